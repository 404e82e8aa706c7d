"""Catching up after an outage stays inside Canvas's rate limit (docs/canvas.md, "Throttling")."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.tracker import Observation, State
from consumer.sandbox.knobs import Knobs
from tests.support.canvas_thread import ACCOUNT_ID
from tests.support.fixtures import CanvasFactory, DaemonFactory
from tests.support.reconcile import LOADED, lines
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SILENT = 200
SPACING = 0.05
BUCKET = Knobs(
    throttle_capacity=50,
    throttle_leak_per_second=10,
    request_cost=1,
    jobs_running=False,  # every import waits in `created`
    loss_rate=1.0,  # and its events are lost: the outage
)


def enough(imports: int, knobs: Knobs) -> float:
    """A deadline for asking about `imports`: `LOADED` times the fastest pace the bucket allows (one
    burst of its capacity, then its leak rate), plus the daemon's start."""
    return LOADED * (imports + 1 - knobs.throttle_capacity) / knobs.throttle_leak_per_second + 10


def seed(db: Path, account: str, batches: list[int], quiet_since: datetime) -> None:
    """The store as a daemon left it before the outage: every import last heard of long ago."""

    async def go() -> None:
        async with open_sqlite(db) as store:
            for batch in batches:
                obs = Observation(account, batch, State.CREATED, quiet_since, account_id=str(ACCOUNT_ID))
                await store.apply(obs, quiet_since)

    asyncio.run(go())


def test_two_hundred_silent_imports_are_reconciled_without_throttling(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory, tmp_path: Path
) -> None:
    """200 imports quiet for longer than RECONCILE_AFTER, a 50-request bucket leaking 10/s, and a
    spacing (50 ms) that alone would drain the bucket: the daemon must pace itself by the bucket."""
    canvas = canvas_for(BUCKET, proxy=True)
    batches = [canvas.start_import() for _ in range(SILENT)]
    seed(tmp_path / "state.db", canvas.account_uuid, batches, datetime.now(UTC) - timedelta(minutes=5))
    served_before = canvas.read(lambda c: len(c.requests))

    daemon = daemon_for(canvas, SIS_CONSUMER_RECONCILE_SPACING=f"{SPACING * 1000:g}ms")
    wait_until(
        lambda: daemon.sample("sis_consumer_reconciliations_total", result="unchanged") >= SILENT,
        timeout=enough(SILENT, BUCKET),
        interval=0.5,
        what=f"{SILENT} imports reconciled",
    )

    # Once asked, an import is asked again after another RECONCILE_AFTER: the trickle goes on.
    requests = canvas.read(lambda c: list(c.requests[served_before:]))
    assert requests[0].path == "/api/v1/accounts/self"
    asked = {int(r.path.rsplit("/", 1)[1]) for r in requests[1:]}
    assert asked == set(batches)
    assert {r.status for r in requests} == {200}
    for status in ("403", "429"):
        assert daemon.sample("sis_consumer_canvas_requests_total", status=status) == 0
    assert canvas.proxy is not None
    assert canvas.proxy.max_in_flight == 1
    gaps = [(b.at - a.at).total_seconds() for a, b in itertools.pairwise(requests[1:])]
    assert min(gaps) >= SPACING


BURST = 12
THROTTLING = [
    pytest.param(
        # Two requests fill the bucket and it leaks one in 0.25 s; the daemon's spacing is 50 ms.
        replace(BUCKET, throttle_capacity=2, throttle_leak_per_second=4, throttle_status=status),
        id=str(status),
    )
    for status in (403, 429)
]


@pytest.mark.parametrize("knobs", THROTTLING)
def test_throttled_requests_are_retried_and_every_import_is_still_reconciled(
    canvas_for: CanvasFactory, daemon_for: DaemonFactory, tmp_path: Path, knobs: Knobs
) -> None:
    """A bucket too small for the daemon's spacing: Canvas throttles, the client backs off and tries
    again, and the reconciler never sees the throttling as an error."""
    canvas = canvas_for(knobs, proxy=True)
    batches = [canvas.start_import() for _ in range(BURST)]
    seed(tmp_path / "state.db", canvas.account_uuid, batches, datetime.now(UTC) - timedelta(minutes=5))
    served_before = canvas.read(lambda c: len(c.requests))

    def answered() -> set[int]:
        requests = canvas.read(lambda c: c.requests[served_before:])
        return {
            int(r.path.rsplit("/", 1)[1]) for r in requests if "/sis_imports/" in r.path and r.status == 200
        }

    daemon = daemon_for(canvas)
    wait_until(lambda: answered() >= set(batches), timeout=enough(BURST, knobs), what="every import answered")

    throttled = str(knobs.throttle_status)
    assert daemon.sample("sis_consumer_canvas_requests_total", status=throttled) >= 1
    assert daemon.sample("sis_consumer_reconciliations_total", result="error") == 0
    assert daemon.sample("sis_consumer_reconciliations_total", result="unchanged") >= BURST
    statuses = canvas.read(lambda c: {r.status for r in c.requests[served_before:]})
    assert statuses == {200, knobs.throttle_status}
    assert canvas.proxy is not None
    assert canvas.proxy.max_in_flight == 1
    assert lines(daemon, "reconcile.failed") == []
