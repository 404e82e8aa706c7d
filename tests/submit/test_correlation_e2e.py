"""The real daemon joins what `sis-consumer submit` recorded to the import's events, in either order;
imports started elsewhere stay `external` and say who started them, without a login."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import open_sqlite
from consumer.config import Secret
from consumer.core.sis_import import api_observation
from consumer.core.submission import Submission, SubmissionStatus
from consumer.ports import CanvasResponse
from consumer.sandbox.simulated_canvas import UI_USER_AGENT
from consumer.submitting import resolve_account
from tests.support.canvas_thread import CanvasThread
from tests.support.cli import run_cli
from tests.support.daemon import Daemon
from tests.support.sis_files import ACCOUNT_ID, sha256, sis_file
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SLACK = 20.0


def view_of(daemon: Daemon, sis_batch_id: int) -> dict[str, Any] | None:
    found = [i for i in daemon.imports() if i["sis_batch_id"] == sis_batch_id]
    assert len(found) <= 1, found
    return found[0] if found else None


def finished(daemon: Daemon, sis_batch_id: int, *, with_result: bool = False) -> dict[str, Any]:
    def done() -> dict[str, Any]:
        view = view_of(daemon, sis_batch_id)
        if view is None or view["outcome"] is None or (with_result and view["result"] is None):
            return {}
        return view

    return wait_until(done, timeout=SLACK, interval=0.2, what=f"import {sis_batch_id} finished in the store")


def test_a_cli_submission_ends_submitted_with_the_file_sha256(
    canvas_thread: CanvasThread, daemon: Daemon, tmp_path: Path
) -> None:
    path = sis_file(tmp_path, "nightly.zip")

    run = run_cli("submit", str(path), "--json", env=daemon.env, cwd=tmp_path)

    assert run.returncode == 0, run.output
    batch = int(json.loads(run.stdout)["id"])
    view = finished(daemon, batch)
    assert (view["state"], view["origin"]) == ("imported", "submitted")
    assert view["submission"]["sha256"] == sha256(path)
    assert view["submission"]["file_name"] == "nightly.zip"
    assert view["submission"]["status"] == "accepted"
    assert view["submitted_at"] is not None


def test_events_processed_before_the_answer_is_recorded_still_end_submitted(
    canvas_thread: CanvasThread, daemon: Daemon, tmp_path: Path
) -> None:
    """Write the submission down, POST, let the daemon see the whole import, and only then record
    the POST's answer, as a slow or paused `submit` would."""
    path = sis_file(tmp_path, "users.csv")

    async def record_and_post() -> tuple[int, CanvasResponse, str, str]:
        async with (
            open_sqlite(daemon.db) as store,
            open_canvas(canvas_thread.url, Secret(canvas_thread.token)) as client,
        ):
            account, account_id = await resolve_account(client, store, "self")
            submission_id = await store.record_submission(
                Submission(
                    canvas_url=client.base_url,
                    account_ref="self",
                    account=account,
                    account_id=account_id,
                    file_name=path.name,
                    size=path.stat().st_size,
                    sha256=sha256(path),
                    options={"extension": "csv"},
                    submitted_at=datetime.now(UTC),
                )
            )
            answer = await client.create_sis_import(
                account_id, path.read_bytes(), filename=path.name, params={"extension": "csv"}
            )
            return submission_id, answer, account, account_id

    submission_id, answer, account, account_id = asyncio.run(record_and_post())
    batch = int(answer.body["id"])
    early = finished(daemon, batch)
    assert (early["state"], early["origin"]) == ("imported", "external")  # the events came first

    async def record_the_answer() -> None:
        async with open_sqlite(daemon.db) as store:
            now = datetime.now(UTC)
            await store.answer_submission(
                submission_id,
                status=SubmissionStatus.ACCEPTED,
                now=now,
                http_status=answer.status,
                request_id=answer.request_id,
                observation=api_observation(answer.body, account=account, account_id=account_id, now=now),
            )

    asyncio.run(record_the_answer())

    view = view_of(daemon, batch)
    assert view is not None
    assert (view["state"], view["origin"]) == ("imported", "submitted")  # joined, and not moved back
    assert view["submission"]["sha256"] == sha256(path)


def test_an_import_started_in_canvas_is_external_with_who_started_it_and_no_login(
    canvas_thread: CanvasThread, daemon: Daemon
) -> None:
    admin = canvas_thread.read(lambda c: c.account(ACCOUNT_ID).admin)
    key = canvas_thread.read(lambda c: c.account(ACCOUNT_ID).developer_key_id)
    batch = canvas_thread.start_import()

    view = finished(daemon, batch, with_result=True)  # the reconciler fetched the SisImport too

    events = canvas_thread.read(lambda c: [d.event["metadata"] for d in c.events_for(batch)])
    assert admin.login_id in [m.get("user_login") for m in events]  # Canvas did send it
    assert (view["origin"], view["submission"]) == ("external", None)
    assert view["started_by"] == {"developer_key_id": str(key), "user_agent": UI_USER_AGENT}
    listing = json.dumps(daemon.imports())
    assert admin.login_id not in listing
    assert admin.name not in listing
