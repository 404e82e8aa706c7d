"""`consumer.daemon.loops.every`: the one timed loop of the watchdog, the reconciler, the lease and the
drop folder's reporter."""

from __future__ import annotations

import asyncio

import pytest
from structlog.testing import capture_logs

from consumer.daemon.loops import every, pause
from consumer.errors import StoreUnavailable


async def test_a_failed_tick_is_logged_with_its_context_and_the_loop_goes_on() -> None:
    stop = asyncio.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        if ticks == 1:
            raise RuntimeError("store hiccup")
        stop.set()

    with capture_logs() as logs:
        await asyncio.wait_for(every(0.001, tick, stop, failed="thing.tick_failed", lease="reconciler"), 5)

    assert ticks == 2
    assert [(e["event"], e["error"], e["lease"]) for e in logs] == [
        ("thing.tick_failed", "RuntimeError: store hiccup", "reconciler")
    ]


async def test_an_error_outside_the_survived_ones_ends_the_loop() -> None:
    async def tick() -> None:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await asyncio.wait_for(
            every(0.001, tick, asyncio.Event(), failed="lease.step_failed", survive=(StoreUnavailable,)), 5
        )


async def test_a_stop_ends_the_pause_at_once_and_no_tick_follows() -> None:
    stop = asyncio.Event()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        ticks += 1
        asyncio.get_running_loop().call_soon(stop.set)

    # An hour's interval: only the stop can end this within the deadline.
    await asyncio.wait_for(every(3600, tick, stop, failed="x"), 5)

    assert ticks == 1


async def test_pause_returns_when_stopped_and_waits_otherwise() -> None:
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(pause(stop, 3600), 5)

    waiting = asyncio.create_task(pause(asyncio.Event(), 3600))
    await asyncio.sleep(0)
    assert not waiting.done()
    waiting.cancel()
