"""What only the SIS Imports API can tell (CANVAS.md §1), learned by the real daemon's reconciler.

Each import here goes quiet after its last event; the daemon must ask Canvas once it has had no news
for `RECONCILE_AFTER`, and record the answer as if an event had brought it.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.reconcile.conftest import CanvasFactory, DaemonFactory
from tests.reconcile.helpers import GAUGE_INTERVAL, LOADED, RECONCILE_AFTER, SLACK, lines, one
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

WINDOW = LOADED * (RECONCILE_AFTER + 2 * GAUGE_INTERVAL + SLACK)
"""No news for RECONCILE_AFTER, then the next reconciler tick, then one request (on a busy machine)."""


def test_a_silent_abort_is_discovered_and_counted(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas)
    canvas.read(lambda c: c.plan(1, "aborted"))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "aborted")
    canvas.run(canvas.canvas.flush())  # every event raised so far is sent
    [*_, last_event] = canvas.read(lambda c: c.events_for(batch))
    assert last_event.state == "importing"

    wait_until(
        lambda: daemon.sample("canvas_sis_imports_finished_total", state="aborted") == 1,
        timeout=WINDOW,
        what="the abort counted",
    )
    assert daemon.sample("sis_consumer_reconciliations_total", result="finished_silently") == 1
    assert (
        daemon.sample("canvas_sis_imports_finished_total", account=canvas.account_uuid, origin="external")
        == 1
    )
    record = one(daemon.imports(), batch)
    assert (record["state"], record["outcome"]) == ("aborted", "aborted")
    # Asked only once the import had been quiet for RECONCILE_AFTER (its last event raised, then
    # received, then quiet), whatever the load made of the wait.
    raised = datetime.fromisoformat(last_event.event["metadata"]["event_time"])
    first_lookup = next(r for r in canvas.read(lambda c: list(c.requests)) if r.path.endswith(f"/{batch}"))
    assert (first_lookup.at - raised).total_seconds() >= RECONCILE_AFTER


def test_a_lost_terminal_event_is_recovered_and_counted_once(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas)
    canvas.read(lambda c: c.plan(1, "imported", lose=["imported"]))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "imported")

    wait_until(
        lambda: one(daemon.imports(), batch)["state"] == "imported",
        timeout=WINDOW,
        what="the import recovered from the API",
    )
    # The result fetch comes after the finish: once it is logged, every count is settled.
    wait_until(lambda: lines(daemon, "import.finished", batch), timeout=WINDOW, what="import.finished")
    assert daemon.sample("canvas_sis_imports_finished_total", state="imported") == 1
    assert daemon.sample("canvas_sis_imports_finished_total") == 1
    assert daemon.sample("canvas_sis_import_duration_seconds_count") == 1
    assert daemon.sample("sis_consumer_reconciliations_total", result="finished_silently") == 1
    assert canvas.read(lambda c: [e.state for e in c.dropped]) == ["imported"]


def test_an_import_in_cleanup_batch_is_shown_as_such(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas)
    canvas.read(lambda c: c.plan(1, stuck=True, stuck_in="cleanup_batch"))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "cleanup_batch")
    assert "cleanup_batch" not in [d.state for d in canvas.read(lambda c: c.events_for(batch))]

    wait_until(
        lambda: one(daemon.imports(), batch)["state"] == "cleanup_batch",
        timeout=WINDOW,
        what="cleanup_batch learned from the API",
    )
    record = one(daemon.imports(), batch)
    assert record["outcome"] is None
    assert record["stuck"] is None  # running, and not for long
    assert daemon.sample("sis_consumer_reconciliations_total", result="advanced") == 1
    wait_until(
        lambda: daemon.sample("canvas_sis_imports_in_progress", state="cleanup_batch") == 1,
        timeout=LOADED * (2 * GAUGE_INTERVAL + SLACK),
        what="the in-progress gauge",
    )
