"""The Canvas token never shows: not in help, config, logs, error messages, the store, or listings.

One scenario runs once for the module: the real daemon reconciles and records imports while
`sis-consumer submit` succeeds, is refused (400) and is turned away (401); one of the imports was
started by a script that put the token in its URL, so every event of it carries the token in
`metadata.url` (docs/canvas.md, "Metadata"). Each test then looks in one place.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import LocalSqs
from tests.support.canvas_thread import CanvasThread
from tests.support.cli import Run, run_cli
from tests.support.daemon import Daemon
from tests.support.reconcile import FAST
from tests.support.sis_files import USERS_CSV, sis_file
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

WRONG_TOKEN = "1~wrongTokenRevokedLastWeek7f3a9c0000000000000000000000000000"
SLACK = 20.0


@dataclass(frozen=True, slots=True)
class Scenario:
    token: str
    help: Run
    check_config: Run
    accepted: Run
    rejected: Run
    unauthorized: Run
    leaky_import: int
    leaky_urls: list[str]
    """`metadata.url` of the Live Events of `leaky_import`: what the daemon received."""
    orphan: int
    log: str
    log_lines: list[dict[str, Any]]
    store_files: dict[str, bytes]
    """Every `state.db*` file, read while the daemon ran (WAL included) and after it stopped."""
    listing: str


def leaks(text: str | bytes, token: str) -> bool:
    """The token, or its secret part (after `<shard>~`), anywhere in `text`."""
    data = text.encode() if isinstance(text, str) else text
    return any(part.encode() in data for part in (token, token.split("~", 1)[1]))


def post_with_token_in_url(canvas: CanvasThread) -> int:
    """A script doing what Canvas's own example does: `?access_token=` in the query string."""

    async def post() -> int:
        form = aiohttp.FormData()
        form.add_field("attachment", USERS_CSV, filename="users.csv", content_type="text/csv")
        url = f"{canvas.canvas.url}/api/v1/accounts/1/sis_imports?access_token={canvas.token}"
        async with aiohttp.ClientSession() as http, http.post(url, data=form) as answer:
            assert answer.status == 200, await answer.text()
            return int((await answer.json())["id"])

    return canvas.run(post())


def store_files(workdir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(workdir.glob("state.db*"))}


@pytest.fixture(scope="module")
def scenario(local_sqs: LocalSqs, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    workdir = tmp_path_factory.mktemp("secrets")
    canvas = CanvasThread(local_sqs.create_queues(), Knobs()).start()
    # At debug, every line the daemon can write is written: the widest search for a leak.
    daemon = Daemon(canvas.queues, workdir, **{**FAST, **canvas.env()}, SIS_CONSUMER_LOG_LEVEL="debug")
    try:
        daemon.start()
        env = daemon.env
        leaky_import = post_with_token_in_url(canvas)
        path = sis_file(workdir, "users.csv")
        accepted = run_cli("submit", str(path), "--json", env=env, cwd=workdir)
        # Canvas checks the drop status after saving the batch: a 400 that leaves an orphan.
        rejected = run_cli(
            "submit", str(path), "--batch-mode-enrollment-drop-status", "bogus", env=env, cwd=workdir
        )
        unauthorized = run_cli(
            "submit", str(path), env={**env, "SIS_CONSUMER_CANVAS_TOKEN": WRONG_TOKEN}, cwd=workdir
        )
        orphan = max(canvas.read(lambda c: list(c.imports)))
        submitted = int(json.loads(accepted.stdout)["id"]) if accepted.returncode == 0 else None

        def settled() -> bool:
            views = {i["sis_batch_id"]: i for i in daemon.imports()}
            finished = all(views.get(b, {}).get("result") is not None for b in (leaky_import, submitted))
            reconciled = bool(canvas.show_requests(orphan))  # the orphan had no news: asked Canvas
            return finished and reconciled and orphan in views

        wait_until(
            settled, timeout=SLACK, interval=0.2, what="imports finished, results fetched, orphan asked"
        )
        listing = json.dumps(daemon.imports())
        running_files = store_files(workdir)
        help_run = run_cli("submit", "--help", env=env, cwd=workdir)
        check_config = run_cli("check-config", env=env, cwd=workdir)
        assert daemon.stop() == 0
        files = {**{f"running:{k}": v for k, v in running_files.items()}, **store_files(workdir)}
        yield Scenario(
            token=canvas.token,
            help=help_run,
            check_config=check_config,
            accepted=accepted,
            rejected=rejected,
            unauthorized=unauthorized,
            leaky_import=leaky_import,
            leaky_urls=canvas.read(
                lambda c: [str(d.event["metadata"].get("url")) for d in c.events_for(leaky_import)]
            ),
            orphan=orphan,
            log=daemon.output(),
            log_lines=daemon.log_lines(),
            store_files=files,
            listing=listing,
        )
    finally:
        daemon.close()
        canvas.close()


def test_submit_help_does_not_show_the_token(scenario: Scenario) -> None:
    assert scenario.help.returncode == 0
    assert "--wait" in scenario.help.stdout
    assert not leaks(scenario.help.output, scenario.token)


def test_check_config_masks_the_token(scenario: Scenario) -> None:
    shown = json.loads(scenario.check_config.stdout)
    assert shown["canvas_token"] == "******** (set)"
    assert not leaks(scenario.check_config.output, scenario.token)


def test_the_daemon_log_never_shows_the_token(scenario: Scenario) -> None:
    events = {(str(line.get("event")), line.get("sis_batch_id")) for line in scenario.log_lines}
    assert ("sis_batch.applied", scenario.leaky_import) in events  # it logged the token-in-URL import
    assert ("import.finished", scenario.leaky_import) in events  # ...and its fetched result
    assert any(e[0].startswith("reconcile.") and e[1] == scenario.orphan for e in events)  # ...and asked
    assert any(leaks(url, scenario.token) for url in scenario.leaky_urls)  # whose events carried it
    assert not leaks(scenario.log, scenario.token)


@pytest.mark.parametrize(
    ("case", "message"),
    [("rejected", "Invalid batch_mode_enrollment_drop_status"), ("unauthorized", "Invalid access token")],
)
def test_a_failed_submission_message_never_shows_the_token(
    scenario: Scenario, case: str, message: str
) -> None:
    run: Run = getattr(scenario, case)
    assert run.returncode == 4, run.output
    assert message in run.stderr
    assert not leaks(run.output, scenario.token)
    assert not leaks(run.output, WRONG_TOKEN)


def test_the_sqlite_files_never_hold_the_token(scenario: Scenario) -> None:
    names = set(scenario.store_files)
    assert {"state.db", "running:state.db-wal"} <= names, names
    assert any(b"Invalid batch_mode_enrollment_drop_status" in data for data in scenario.store_files.values())
    for name, data in scenario.store_files.items():
        assert not leaks(data, scenario.token), name
        assert not leaks(data, WRONG_TOKEN), name


def test_imports_json_never_shows_the_token(scenario: Scenario) -> None:
    listed = {i["sis_batch_id"] for i in json.loads(scenario.listing)}
    assert {scenario.leaky_import, scenario.orphan} <= listed
    assert not leaks(scenario.listing, scenario.token)
