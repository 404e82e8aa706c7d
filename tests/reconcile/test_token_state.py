"""The token's state, as the leader exports it (`sis_consumer_canvas_token_refused_since_timestamp_seconds`,
what SisConsumerCanvasUnauthorized pages on): taken from the latest answer to any Canvas call, kept
through the reconciler's pauses (10 min doubling to 1 h) until a call succeeds, checked at least
hourly with nothing to reconcile, and exported by the leader only. One tick at a time
(`tests.support.reconciler_rig`), on a clock the test moves."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consumer.daemon.reconciler import MAX_REFUSED_PAUSE, TOKEN_CHECK_EVERY
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.faults import Fault
from tests.support.reconciler_rig import RECONCILE_AFTER, HandLeader, Rig, open_rig

SELF = r"/accounts/self$"


@pytest.fixture
def leader() -> HandLeader:
    return HandLeader()


@pytest.fixture
async def rig(canvas: SimulatedCanvas, tmp_path: Path, leader: HandLeader) -> AsyncIterator[Rig]:
    async with open_rig(canvas, tmp_path, leader) as opened:
        yield opened


async def test_a_revoked_token_stays_refused_through_every_pause_until_a_call_succeeds(rig: Rig) -> None:
    batch = await rig.waiting_import()
    await rig.learn_account()
    assert rig.token_refused_since() == 0
    rig.canvas.faults.start("unauthorized")
    rig.clock.advance(RECONCILE_AFTER)
    refused_at = rig.clock.now().timestamp()

    await rig.tick()
    assert rig.asked(batch) == [401]
    # The pauses: 10, 20, 40 and 60 minutes; each ends with one more refused call (the lookup,
    # or the hourly `accounts/self` once the last call is an hour old).
    for pause in (RECONCILE_AFTER, 2 * RECONCILE_AFTER, 4 * RECONCILE_AFTER, MAX_REFUSED_PAUSE):
        rig.clock.advance(pause - 1)
        await rig.tick()
        assert rig.token_refused_since() == refused_at
        rig.clock.advance(1)
        await rig.tick()
        assert rig.token_refused_since() == refused_at
    assert [a.status for a in rig.proxy.answered if a.status != 200] == [401] * 5

    rig.canvas.faults.stop()
    rig.clock.advance(MAX_REFUSED_PAUSE)
    await rig.tick()

    assert rig.asked(batch)[-1] == 200
    assert rig.token_refused_since() == 0


async def test_a_lost_permission_403_refuses_the_token_too(rig: Rig) -> None:
    batch = await rig.waiting_import()
    await rig.learn_account()
    rig.proxy.inject(Fault("GET", rf"/sis_imports/{batch}$", status=403))  # an HTML 403: no rate limit

    await rig.tick()

    assert rig.asked(batch) == [403]
    assert rig.token_refused_since() == rig.clock.now().timestamp()


async def test_with_nothing_to_reconcile_the_leader_asks_canvas_at_least_hourly(rig: Rig) -> None:
    """A token revoked on a quiet weekend is found within the hour."""
    await rig.learn_account()
    rig.canvas.faults.start("unauthorized")

    rig.clock.advance(TOKEN_CHECK_EVERY - 1)
    await rig.tick()
    assert rig.proxy.statuses("GET", SELF) == [200]
    assert rig.token_refused_since() == 0

    rig.clock.advance(1)
    await rig.tick()
    assert rig.proxy.statuses("GET", SELF) == [200, 401]
    assert rig.token_refused_since() == rig.clock.now().timestamp()


async def test_a_replica_that_does_not_lead_exports_no_token_state(rig: Rig, leader: HandLeader) -> None:
    """A former leader's state would be stale: NaN, which no rule counts."""
    await rig.learn_account()
    rig.canvas.faults.start("unauthorized")
    rig.clock.advance(TOKEN_CHECK_EVERY)
    await rig.tick()
    assert rig.token_refused_since() == rig.clock.now().timestamp()

    leader.leading = False
    await rig.tick()

    value = rig.token_refused_since()
    assert value is not None
    assert math.isnan(value)
