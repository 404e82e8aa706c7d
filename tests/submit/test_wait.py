"""`sis-consumer submit --wait`: the exit code says how the import ended; stdout summarises it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import open_sqlite
from consumer.config import Secret
from consumer.core.tracker import Observation, State
from consumer.ports import SystemClock
from consumer.sandbox.knobs import Outcome
from consumer.sandbox.local_sqs import free_port
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.submitting import Submitted, wait_for_finish
from tests.support.canvas_thread import CanvasThread
from tests.support.cli import cli, run_cli
from tests.support.daemon import Daemon
from tests.support.reconcile import FAST
from tests.support.records import ACCOUNT
from tests.support.sis_files import ACCOUNT_ID, canvas_env, sis_file
from tests.support.waiting import wait_until

MESSAGES = 2
WAIT = ("--wait", "--timeout", "20s", "--api-interval", "100ms", "--json")


def show_requests(canvas: SimulatedCanvas, import_id: int) -> int:
    return sum(
        1 for r in canvas.requests if r.method == "GET" and r.path.endswith(f"/sis_imports/{import_id}")
    )


@pytest.mark.parametrize(
    ("outcome", "code", "warnings", "errors"),
    [
        ("imported", 0, 0, 0),
        ("imported_with_messages", 2, MESSAGES, 0),
        ("failed", 1, 0, 0),
        ("failed_with_messages", 1, 0, MESSAGES),
        ("aborted", 1, 0, 0),  # silent: only the API tells
    ],
)
async def test_wait_without_a_daemon_exits_with_the_outcome_learned_from_the_api(
    canvas: SimulatedCanvas, tmp_path: Path, outcome: Outcome, code: int, warnings: int, errors: int
) -> None:
    canvas.plan(ACCOUNT_ID, outcome, messages=MESSAGES)
    path = sis_file(tmp_path, "users.csv")

    run = await cli("submit", str(path), *WAIT, env=canvas_env(canvas, tmp_path / "s.db"), cwd=tmp_path)

    assert run.returncode == code, run.output
    [imp] = canvas.imports.values()
    assert imp.workflow_state == outcome
    assert show_requests(canvas, imp.id) >= 1  # no daemon: only the API could tell
    sis_import = json.loads(run.stdout)  # --json: Canvas's whole SisImport
    assert (int(sis_import["id"]), sis_import["workflow_state"]) == (imp.id, outcome)
    counts = (sis_import.get("data") or {}).get("counts") or {}
    assert (counts.get("warning_count", 0), counts.get("error_count", 0)) == (warnings, errors)
    assert len(sis_import.get("processing_warnings") or []) == warnings
    assert len(sis_import.get("processing_errors") or []) == errors
    assert counts.get("users", 0) == (0 if outcome == "aborted" else 2)  # the CSV's two rows


async def test_wait_exits_3_when_the_import_does_not_finish_in_time(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    canvas.plan(ACCOUNT_ID, stuck=True)  # the job dies: `importing` for ever
    path = sis_file(tmp_path, "users.csv")

    run = await cli(
        "submit",
        str(path),
        "--wait",
        "--timeout",
        "1s",
        "--api-interval",
        "200ms",
        "--json",
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 3, run.output
    assert "timed out" in run.stderr
    [imp] = canvas.imports.values()
    assert imp.workflow_state == "importing"
    summary = json.loads(run.stdout)
    assert (int(summary["id"]), summary["workflow_state"]) == (imp.id, "importing")


def test_wait_with_a_daemon_learns_the_finish_from_the_store(
    canvas_thread: CanvasThread, daemon: Daemon, tmp_path: Path
) -> None:
    canvas_thread.read(lambda c: c.plan(ACCOUNT_ID, "imported_with_messages", messages=MESSAGES))
    path = sis_file(tmp_path, "users.csv")

    # The API is asked only after an hour: an answer within seconds came from the daemon's store.
    run = run_cli(
        "submit",
        str(path),
        "--wait",
        "--timeout",
        "30s",
        "--api-interval",
        "1h",
        "--json",
        env=daemon.env,
        cwd=tmp_path,
    )

    assert run.returncode == 2, run.output
    sis_import = json.loads(run.stdout)
    assert sis_import["workflow_state"] == "imported_with_messages"
    assert sis_import["data"]["counts"]["warning_count"] == MESSAGES


def test_a_finish_only_submit_wait_saw_is_counted_once_by_the_running_daemon(
    canvas_thread: CanvasThread, tmp_path: Path
) -> None:
    """The import's last event is lost and the daemon's reconciler would ask only after an hour: the
    finish reaches the store through `submit --wait`, and the daemon counts it from the outbox."""
    daemon = Daemon(
        canvas_thread.queues,
        tmp_path,
        **{
            **FAST,
            **canvas_thread.env(),
            "SIS_CONSUMER_RECONCILE_AFTER": "1h",
            "SIS_CONSUMER_GAUGE_INTERVAL": "1s",
        },
    ).start()
    try:
        canvas_thread.read(lambda c: c.plan(ACCOUNT_ID, "imported", lose=["imported"]))
        path = sis_file(tmp_path, "users.csv")

        run = run_cli(
            "submit",
            str(path),
            "--wait",
            "--timeout",
            "30s",
            "--api-interval",
            "200ms",
            env=daemon.env,
            cwd=tmp_path,
        )

        assert run.returncode == 0, run.output
        wait_until(
            lambda: daemon.sample("canvas_sis_imports_finished_total", state="imported") == 1,
            timeout=5,  # the watchdog claims every second; the rest is a busy machine's slack
            what="the finish counted by the daemon",
        )
        assert [line["effects"] for line in daemon.log_lines() if line["event"] == "outbox.counted"] == [4]
        assert daemon.sample("canvas_sis_imports_finished_total", origin="submitted") == 1
    finally:
        daemon.close()


async def test_the_state_followed_is_the_store_s_when_canvas_cannot_be_asked_at_the_end(
    tmp_path: Path,
) -> None:
    """The daemon recorded `importing`; when waiting stops Canvas is unreachable: the latest state
    known is the store's, not the POST's answer (`created`) of long ago."""
    now = datetime.now(UTC)
    unreachable = f"http://127.0.0.1:{free_port()}"
    async with (
        open_sqlite(tmp_path / "s.db") as store,
        open_canvas(unreachable, Secret("1~token"), attempts=1) as canvas,
    ):
        await store.apply(Observation(ACCOUNT, 7, State.IMPORTING, now, source="event", account_id="1"), now)
        submitted = Submitted(1, ACCOUNT, "1", {"id": "7", "workflow_state": "created"})

        followed = await wait_for_finish(
            submitted, canvas=canvas, store=store, clock=SystemClock(), give_up_after=0.2, api_interval=3600
        )

    assert followed.outcome is None
    assert followed.state is State.IMPORTING
    assert followed.sis_import["workflow_state"] == "created"  # what Canvas last said, kept as it was
