"""The daemon's timed loops: one way to wait, one way to repeat a tick until asked to stop."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import structlog

log = structlog.get_logger("sis_consumer.loops")


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, or less if `stop` is set meanwhile."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def every(
    interval: float,
    tick: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    failed: str,
    survive: tuple[type[Exception], ...] = (Exception,),
    **context: Any,
) -> None:
    """Run `tick`, then pause `interval`, until `stop`. A tick that raises one of `survive` is
    logged as the event `failed` (with `context`) and the loop goes on: one bad tick must not end
    a loop that the daemon's health depends on. Anything else ends the loop (and with it the
    daemon: exit 70)."""
    while not stop.is_set():
        try:
            await tick()
        except survive as exc:
            log.warning(failed, error=f"{type(exc).__name__}: {exc}", **context)
        await pause(stop, interval)
