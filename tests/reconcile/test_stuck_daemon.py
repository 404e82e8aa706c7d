"""The cases that page (README, "Stuck imports and reconciliation"), judged by the real daemon's watchdog.

Each verdict must show in the three places an operator looks: the `canvas_sis_imports_stuck` gauge,
`stuck` in `sis-consumer imports --json`, and an `import.stuck` log line.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from consumer.errors import CanvasBadRequest
from consumer.sandbox.knobs import Knobs
from consumer.submitting import ImportOptions
from tests.support.cli import clean_env, run_cli
from tests.support.daemon import Daemon
from tests.support.fixtures import CanvasFactory, DaemonFactory
from tests.support.reconcile import GAUGE_INTERVAL, LOADED, SLACK, lines, one, submit_import
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

STUCK_AFTER = 1.0
WINDOW = LOADED * (STUCK_AFTER + 2 * GAUGE_INTERVAL + SLACK)
"""The threshold, then the next watchdog tick and a scrape (on a busy machine)."""


def listed_stuck(daemon: Daemon) -> list[dict[str, Any]]:
    """`sis-consumer imports --stuck --json` from a shell that has only the store's location: its
    own (default, 30 min and more) thresholds would judge nothing stuck; the daemon's verdicts show."""
    run = run_cli(
        "imports",
        "--stuck",
        "--json",
        env=clean_env(SIS_CONSUMER_STORE=f"sqlite:///{daemon.db}"),
        cwd=daemon.workdir,
    )
    assert run.returncode == 0, run.output
    listed: list[dict[str, Any]] = json.loads(run.stdout)
    return listed


def flagged(daemon: Daemon, batch: int, reason: str) -> None:
    """Wait for the gauge, then check the listing and the log say the same."""
    wait_until(
        lambda: daemon.sample("canvas_sis_imports_stuck", reason=reason) == 1,
        timeout=WINDOW,
        what=f"canvas_sis_imports_stuck{{reason={reason!r}}}",
    )
    assert daemon.sample("canvas_sis_imports_stuck") == 1
    listed = wait_until(lambda: listed_stuck(daemon), timeout=WINDOW, what="the verdict in the store")
    assert [(v["sis_batch_id"], v["stuck"]) for v in listed] == [(batch, reason)]
    assert one(daemon.imports(), batch)["stuck"] == reason
    logged = wait_until(lambda: lines(daemon, "import.stuck", batch), timeout=WINDOW, what="import.stuck")
    assert [line["reason"] for line in logged] == [reason]


def test_an_orphaned_initializing_is_flagged(canvas_for: CanvasFactory, daemon_for: DaemonFactory) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_STUCK_ORPHANED=f"{STUCK_AFTER:g}s")
    with pytest.raises(CanvasBadRequest) as refused:
        submit_import(canvas, daemon.db, ImportOptions(multi_term_batch_mode=True))
    assert refused.value.status == 400
    [orphan] = canvas.read(lambda c: list(c.imports.values()))
    canvas.run(canvas.canvas.flush())
    assert [d.state for d in canvas.read(lambda c: c.events_for(orphan.id))] == ["initializing"]

    flagged(daemon, orphan.id, "orphaned")
    record = one(daemon.imports(), orphan.id)
    assert (record["state"], record["origin"]) == ("initializing", "submitted")
    assert record["submission"]["status"] == "rejected"


def test_an_import_queued_behind_a_running_one_is_not_stuck(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_STUCK_NEVER_STARTED=f"{STUCK_AFTER:g}s")
    canvas.read(lambda c: c.plan(1, stuck=True))  # the job dies: `importing` for ever
    running, queued = canvas.start_import(), canvas.start_import()
    canvas.wait_for_state(running, "importing")
    assert canvas.state(queued) == "created"

    def judged_long_after_the_threshold() -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        # One scrape: the age gauge and the stuck gauge come from the same watchdog tick.
        samples = daemon.metrics()
        in_progress = {
            dict(labels)["state"]: v
            for (n, labels), v in samples.items()
            if n == "canvas_sis_imports_in_progress"
        }
        oldest = sum(
            v for (n, _), v in samples.items() if n == "canvas_sis_import_oldest_in_progress_seconds"
        )
        ready = in_progress.get("importing") == 1 and in_progress.get("created") == 1
        return samples if ready and oldest >= 2 * STUCK_AFTER else {}

    samples = wait_until(judged_long_after_the_threshold, timeout=2 * WINDOW, what="both imports aging")
    assert sum(v for (n, _), v in samples.items() if n == "canvas_sis_imports_stuck") == 0
    listing = daemon.imports()
    assert (one(listing, running)["stuck"], one(listing, queued)["stuck"]) == (None, None)
    assert one(listing, queued)["state"] == "created"
    assert lines(daemon, "import.stuck") == []


def test_an_import_queued_behind_nothing_is_never_started(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_STUCK_NEVER_STARTED=f"{STUCK_AFTER:g}s")
    canvas.read(lambda c: c.stop_jobs(1))  # job workers down, nothing running
    batch = canvas.start_import()
    assert canvas.state(batch) == "created"

    flagged(daemon, batch, "never_started")
    assert one(daemon.imports(), batch)["state"] == "created"


def test_a_submitted_import_whose_events_never_arrive_is_silent(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for(Knobs(loss_rate=1.0))  # the Live Events pipeline is broken
    daemon = daemon_for(canvas, SIS_CONSUMER_STUCK_SILENT=f"{STUCK_AFTER:g}s")
    canvas.read(lambda c: c.plan(1, stuck=True))  # and the import stays unfinished
    submitted = submit_import(canvas, daemon.db)
    canvas.wait_for_state(submitted.sis_batch_id, "importing")

    flagged(daemon, submitted.sis_batch_id, "silent")
    assert one(daemon.imports(), submitted.sis_batch_id)["origin"] == "submitted"
    assert daemon.sample("sis_consumer_events_total") == 0
    assert canvas.read(lambda c: len(c.published)) == 0


def test_a_stuck_import_that_recovers_logs_once_each_way(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_STUCK_NEVER_STARTED=f"{STUCK_AFTER:g}s")
    canvas.read(lambda c: c.stop_jobs(1))
    batch = canvas.start_import()
    flagged(daemon, batch, "never_started")

    canvas.read(lambda c: c.start_jobs(1))
    canvas.wait_for_state(batch, "imported")
    wait_until(lambda: lines(daemon, "import.recovered", batch), timeout=WINDOW, what="import.recovered")
    assert daemon.sample("canvas_sis_imports_stuck") == 0
    wait_until(lambda: listed_stuck(daemon) == [], timeout=WINDOW, what="the verdict gone from the store")
    assert daemon.stop() == 0
    assert [line["reason"] for line in lines(daemon, "import.stuck", batch)] == ["never_started"]
    assert [line["was"] for line in lines(daemon, "import.recovered", batch)] == ["never_started"]
    assert lines(daemon, "import.stuck") == lines(daemon, "import.stuck", batch)
