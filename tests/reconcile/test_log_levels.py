"""The reconciler's log is for people: an answer that changed nothing at debug, an import Canvas
ended as aborted at warning."""

from __future__ import annotations

import pytest

from tests.support.fixtures import CanvasFactory, DaemonFactory
from tests.support.reconcile import GAUGE_INTERVAL, RECONCILE_AFTER, SLACK, lines
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

WINDOW = RECONCILE_AFTER + 2 * GAUGE_INTERVAL + SLACK


def test_an_answer_that_changed_nothing_is_logged_at_debug_and_counted(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas, SIS_CONSUMER_LOG_LEVEL="debug")
    canvas.read(lambda c: c.plan(1, stuck=True))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "importing")

    wait_until(
        lambda: daemon.sample("sis_consumer_reconciliations_total", result="unchanged") >= 1,
        timeout=2 * WINDOW,
        what="a reconciliation that changed nothing",
    )
    wait_until(lambda: lines(daemon, "reconcile.unchanged", batch), timeout=WINDOW, what="its log line")
    assert {line["level"] for line in lines(daemon, "reconcile.unchanged", batch)} == {"debug"}


def test_a_silent_abort_is_logged_at_warning(canvas_for: CanvasFactory, daemon_for: DaemonFactory) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas)
    canvas.read(lambda c: c.plan(1, "aborted"))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "aborted")

    wait_until(lambda: lines(daemon, "import.finished", batch), timeout=2 * WINDOW, what="import.finished")
    assert [line["level"] for line in lines(daemon, "reconcile.finished_silently", batch)] == ["warning"]
    assert [line["level"] for line in lines(daemon, "import.finished", batch)] == ["warning"]
