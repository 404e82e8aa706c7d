"""A finished import's SisImport is fetched once for its result summary (DESIGN.md, "The watchdog"),
and once more later when its `errors_attachment` was not written yet (CANVAS.md §5)."""

from __future__ import annotations

import pytest

from tests.reconcile.conftest import CanvasFactory, DaemonFactory
from tests.reconcile.faults import Fault, FaultyCanvas, without
from tests.reconcile.helpers import GAUGE_INTERVAL, LOADED, SLACK, lines, one
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

WARNINGS = 3
FETCH_WINDOW = LOADED * (2 * GAUGE_INTERVAL + SLACK)
"""The finish event arrives; the next reconciler tick fetches the result (on a busy machine)."""


def test_warnings_are_counted_once_and_summarised(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    canvas = canvas_for()
    daemon = daemon_for(canvas)
    canvas.read(lambda c: c.plan(1, "imported_with_messages", messages=WARNINGS, errors_attachment_seconds=0))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "imported_with_messages")
    canvas.wait("errors_attachment", lambda c: c.imports[batch].errors_attachment is not None)
    warnings = canvas.read(lambda c: c.imports[batch].processing_warnings)

    [finished] = wait_until(
        lambda: lines(daemon, "import.finished", batch), timeout=FETCH_WINDOW, what="result"
    )
    assert finished["state"] == "imported_with_messages"
    assert (finished["warning_count"], finished["error_count"]) == (WARNINGS, 0)
    assert finished["first_warnings"] == warnings
    assert finished["errors_attachment"] is True

    assert daemon.sample("canvas_sis_import_messages_total", severity="warning") == WARNINGS
    assert daemon.sample("canvas_sis_import_messages_total", severity="error") == 0
    result = one(daemon.imports(), batch)["result"]
    assert (result["warning_count"], result["first_warnings"], result["errors_attachment"]) == (
        WARNINGS,
        warnings,
        True,
    )
    assert daemon.stop() == 0
    assert len(lines(daemon, "import.finished", batch)) == 1
    assert canvas.show_requests(batch) == [200]  # fetched once: nothing was missing


def test_a_missing_errors_attachment_is_looked_at_again_once(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory
) -> None:
    """The first answer lacks `errors_attachment` (the proxy takes it out: Canvas answering before
    its later job wrote it, whatever the load made of the timing); the second look, RECONCILE_AFTER
    (3 s) after the first, finds it."""
    look_again = 3.0
    canvas = canvas_for(proxy=FaultyCanvas)
    proxy = canvas.proxy
    assert isinstance(proxy, FaultyCanvas)
    not_yet = Fault("GET", r"/sis_imports/\d+$", rewrite=without("errors_attachment"))
    canvas.read(lambda _: proxy.inject(not_yet))
    daemon = daemon_for(canvas, SIS_CONSUMER_RECONCILE_AFTER=f"{look_again:g}s")
    canvas.read(lambda c: c.plan(1, "imported_with_messages", messages=WARNINGS, errors_attachment_seconds=0))
    batch = canvas.start_import()
    canvas.wait_for_state(batch, "imported_with_messages")

    [finished] = wait_until(
        lambda: lines(daemon, "import.finished", batch), timeout=FETCH_WINDOW, what="result"
    )
    assert finished["errors_attachment"] is False
    # (Not read back from the store here: the second look may already have replaced it.)

    wait_until(
        lambda: one(daemon.imports(), batch)["result"]["errors_attachment"],
        timeout=look_again + FETCH_WINDOW,
        what="the second look",
    )
    assert canvas.show_requests(batch) == [200, 200]
    assert daemon.sample("canvas_sis_import_messages_total", severity="warning") == WARNINGS

    # No third look: an abort that ends now is discovered RECONCILE_AFTER later, and its own result
    # is fetched after any result due by then (results are fetched oldest finish first).
    canvas.read(lambda c: c.plan(1, "aborted"))
    later = canvas.start_import()
    canvas.wait_for_state(later, "aborted")
    wait_until(
        lambda: lines(daemon, "import.finished", later), timeout=look_again + FETCH_WINDOW, what="later"
    )
    assert canvas.show_requests(batch) == [200, 200]
    assert daemon.sample("canvas_sis_import_messages_total", severity="warning") == WARNINGS
    assert len(lines(daemon, "import.finished", batch)) == 1
