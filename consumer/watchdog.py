"""The timer loop: recompute the in-progress gauges from the store, so they are right after a restart."""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from consumer.observability.metrics import Metrics
from consumer.ports import Clock, ImportStore

log = structlog.get_logger("sis_consumer.watchdog")


class Watchdog:
    def __init__(self, store: ImportStore, metrics: Metrics, clock: Clock, interval: float) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval = interval

    async def tick(self) -> None:
        unfinished = await self._store.unfinished()
        last_successes = await self._store.last_successes()
        self._metrics.refresh_progress(unfinished, last_successes, self._clock.now())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # a store hiccup must not end the loop
                log.warning("watchdog.tick_failed", error=str(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval)
