"""Real clients against the real `sis-consumer sandbox --json`, watched by a real `sis-consumer run`.

The sandbox scripts each import's fate (`--fates`), so every client sees one outcome it must
handle; the daemon reads the Live Events of all of them from the sandbox's queue, and finds the
silent abort through the API with the sandbox's token.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.clients import (
    canvasapi_client,
    contrib_client,
    cron_script,
    curl,
    curl_imports,
    curl_restore,
)
from tests.support.daemon import Daemon
from tests.support.sandbox_process import RunningSandbox, running_sandbox
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.filterwarnings("ignore:Canvas may respond unexpectedly:UserWarning"),  # loopback HTTP
]

# In creation order: cron, contrib, canvasapi (polled, then the one it aborts), curl x2.
FATES = "imported,imported_with_messages,failed_with_messages,stuck,imported,imported"
USERS = b"user_id,login_id,first_name,last_name,email,status\nu1,ada,Ada,Lovelace,ada@example.edu,active\n"
COURSES = b"course_id,short_name,long_name,term_id,status\nC1,C1,Course One,2026FA,active\n"


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path, FATES) as running:
        yield running


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    csv_path = tmp_path / "users.csv"
    csv_path.write_bytes(USERS)
    zip_path = tmp_path / "nightly.zip"
    with zipfile.ZipFile(zip_path, "w") as archive:
        archive.writestr("users.csv", USERS)
        archive.writestr("courses.csv", COURSES)
    return csv_path, zip_path


def test_the_first_json_line_describes_canvas_the_queue_and_every_root_account(
    sandbox: RunningSandbox,
) -> None:
    described = sandbox.described
    assert described["canvas_url"].startswith("http://127.0.0.1:")
    assert described["queue_url"].startswith(described["sqs_endpoint"])
    assert [a["id"] for a in described["accounts"]] == ["1", "2"]
    terms = sandbox.account["terms"]
    assert {"id", "sis_term_id", "name"} == set(terms[0])
    assert "2026FA" in {t["sis_term_id"] for t in terms}
    me = requests.get(
        f"{described['canvas_url']}/api/v1/accounts/self",
        headers={"Authorization": f"Bearer {sandbox.account['token']}"},
        timeout=10,
    ).json()
    assert me["uuid"] == sandbox.account["uuid"]


def test_real_clients_run_imports_to_the_end_and_the_daemon_tracks_them(
    sandbox: RunningSandbox, files: tuple[Path, Path], tmp_path: Path
) -> None:
    """The cron script, the contrib client, canvasapi and curl each take an import from create to
    its end; the daemon, fed only by the sandbox's queue (and its API for the silent abort),
    records every one of them in its final state."""
    csv_path, zip_path = files
    target = sandbox.target
    daemon = Daemon(
        sandbox.queues,
        tmp_path,
        SIS_CONSUMER_CANVAS_URL=target.canvas_url,
        SIS_CONSUMER_CANVAS_TOKEN=target.token,
        SIS_CONSUMER_RECONCILE_AFTER="1s",
        SIS_CONSUMER_RECONCILE_SPACING="100ms",
    ).start()
    try:
        cron = cron_script(target, zip_path)
        contrib = contrib_client(target, csv_path)
        api = canvasapi_client(target, zip_path, term_sis_id="2026FA")
        by_curl = curl_imports(target, csv_path, zip_path)
        restore = curl_restore(target, by_curl[1]["id"])

        assert cron["workflow_state"] == "imported"
        assert contrib["workflow_state"] == "imported_with_messages"
        assert (api.polled.workflow_state, api.polled.batch_mode_term_id) == ("failed_with_messages", 2)
        assert api.aborted.workflow_state == "aborted"
        assert api.refused_unknown_term
        assert api.refused_abort_of_finished
        assert {cron["id"], contrib["id"], api.polled.id, api.aborted.id} <= set(api.listed_ids)
        assert [i["workflow_state"] for i in by_curl] == ["imported", "imported"]
        assert restore["tag"] == "sis_batch_state_restore"

        errors_url = wait_until(
            lambda: (
                requests.get(
                    f"{target.canvas_url}/api/v1/accounts/1/sis_imports/{contrib['id']}",
                    headers={"Authorization": f"Bearer {target.token}"},
                    timeout=10,
                )
                .json()
                .get("errors_attachment")
            ),
            timeout=30,
            what="the errors attachment",
        )["url"]
        rows = list(csv.reader(io.StringIO(curl("-L", errors_url))))
        assert rows[0] == ["sis_import_id", "file", "message", "row"]
        assert {r[0] for r in rows[1:]} == {str(contrib["id"])}

        expected = {
            cron["id"]: "imported",
            contrib["id"]: "imported_with_messages",
            api.polled.id: "failed_with_messages",
            api.aborted.id: "aborted",  # silent in Live Events: found through the API
            by_curl[0]["id"]: "imported",
            by_curl[1]["id"]: "restored",
        }

        def tracked() -> dict[int, str] | None:
            states = {i["sis_batch_id"]: i["state"] for i in daemon.imports()}
            return states if all(states.get(k) == v for k, v in expected.items()) else None

        wait_until(tracked, timeout=60, interval=0.5, what=f"the daemon to track {expected}")
        assert daemon.sample("canvas_sis_imports_finished_total", state="aborted") == 1
        assert target.token not in daemon.output()
    finally:
        daemon.close()
