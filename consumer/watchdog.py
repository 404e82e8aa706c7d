"""The timer loop: gauges and stuck verdicts recomputed from the store, right after a restart too."""

from __future__ import annotations

import asyncio

import structlog

from consumer.core.stuck import StuckReason, StuckThresholds, stuck_imports
from consumer.observability.metrics import Metrics
from consumer.pause import pause
from consumer.ports import Clock, ImportStore

log = structlog.get_logger("sis_consumer.watchdog")


class Watchdog:
    def __init__(
        self,
        store: ImportStore,
        metrics: Metrics,
        clock: Clock,
        interval: float,
        limits: StuckThresholds,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval = interval
        self._limits = limits
        self._stuck: dict[tuple[str, int], StuckReason] = {}

    async def tick(self) -> None:
        now = self._clock.now()
        unfinished = await self._store.unfinished()
        last_successes = await self._store.last_successes()
        stuck = stuck_imports(unfinished, now=now, limits=self._limits)
        self._metrics.refresh_progress(unfinished, last_successes, now)
        self._metrics.refresh_stuck(stuck)
        self._log_changes(stuck)

    def _log_changes(self, stuck: dict[tuple[str, int], StuckReason]) -> None:
        # One line when an import becomes stuck (or changes reason), one when it recovers.
        for (account, batch), reason in stuck.items():
            if self._stuck.get((account, batch)) is not reason:
                log.warning("import.stuck", account=account, sis_batch_id=batch, reason=reason.value)
        for (account, batch), reason in self._stuck.items():
            if (account, batch) not in stuck:
                log.info("import.recovered", account=account, sis_batch_id=batch, was=reason.value)
        self._stuck = stuck

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.tick()
            except Exception as exc:  # a store hiccup must not end the loop
                log.warning("watchdog.tick_failed", error=str(exc))
            await pause(stop, self._interval)
