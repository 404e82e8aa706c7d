"""The gauges come from the store, not from events: right after a restart they are already right."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from consumer.sandbox.local_sqs import LocalSqs
from tests.reconcile.conftest import CanvasFactory, DaemonFactory
from tests.reconcile.helpers import GAUGE_INTERVAL, LOADED, NO_CANVAS, SLACK
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RUNNING_TOO_LONG = 1.0
API_PRECISION = 1.0
"""The SIS Imports API gives whole seconds: a reconciled import's start may read up to 1 s earlier."""


def test_gauges_are_right_after_a_restart_without_any_new_event(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory, local_sqs: LocalSqs
) -> None:
    canvas = canvas_for()
    env = {"SIS_CONSUMER_STUCK_RUNNING": f"{RUNNING_TOO_LONG:g}s"}
    first = daemon_for(canvas, **env)
    canvas.read(lambda c: c.plan(1, stuck=True))
    running, queued = canvas.start_import(), canvas.start_import()
    canvas.wait_for_state(running, "importing")
    created_at = canvas.read(lambda c: c.imports[running].created_at)
    account = canvas.account_uuid

    def right(daemon_gauges: dict[tuple[str, frozenset[tuple[str, str]]], float]) -> bool:
        in_progress = {
            (dict(ls)["account"], dict(ls)["state"]): v
            for (n, ls), v in daemon_gauges.items()
            if n == "canvas_sis_imports_in_progress" and v
        }
        stuck = {
            (dict(ls)["account"], dict(ls)["reason"]): v
            for (n, ls), v in daemon_gauges.items()
            if n == "canvas_sis_imports_stuck" and v
        }
        oldest = daemon_gauges.get(
            ("canvas_sis_import_oldest_in_progress_seconds", frozenset({("account", account)}))
        )
        age = (datetime.now(UTC) - created_at).total_seconds()
        return (
            in_progress == {(account, "importing"): 1, (account, "created"): 1}
            and stuck == {(account, "running_too_long"): 1}
            and oldest is not None
            and age - 1.0 <= oldest <= age + API_PRECISION + 0.5
        )

    wait_until(
        lambda: right(first.metrics()),
        timeout=LOADED * (RUNNING_TOO_LONG + SLACK),
        what="the first daemon's view",
    )
    assert first.stop() == 0
    assert canvas.state(queued) == "created"

    # A new process on the same store, listening to an empty queue and without a Canvas token:
    # neither an event nor the API can help it, so what it shows comes from the store.
    second = daemon_for(None, on=local_sqs.create_queues(), **env, **NO_CANVAS)
    within = LOADED * (2 * GAUGE_INTERVAL + SLACK)  # two watchdog ticks, and a scrape
    wait_until(lambda: right(second.metrics()), timeout=within, what="the gauges after the restart")
    assert second.sample("sis_consumer_events_total") == 0
    assert second.sample("sis_consumer_canvas_requests_total") == 0
