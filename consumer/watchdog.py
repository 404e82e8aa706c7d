"""The timer loop: gauges and stuck verdicts recomputed from the store, right after a restart too.

The leader also records the stuck verdicts in the store whenever they change (what
`sis-consumer imports --stuck` shows), counts effects that another process committed and nobody
counted (the outbox), and every replica writes down when it last received a Live Event, for the
gauge after a restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Protocol

import structlog

from consumer.core.stuck import StuckReason, StuckThresholds, stuck_imports
from consumer.observability.metrics import Metrics
from consumer.pause import pause
from consumer.ports import Clock, ImportStore, Leader, OutboxStore, StuckStore

log = structlog.get_logger("sis_consumer.watchdog")


class Watched(ImportStore, OutboxStore, StuckStore, Protocol):
    """The store roles the watchdog uses."""


class Watchdog:
    def __init__(
        self,
        store: Watched,
        metrics: Metrics,
        clock: Clock,
        interval: float,
        limits: StuckThresholds,
        leader: Leader,
        last_event: Callable[[], datetime | None] = lambda: None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval = interval
        self._limits = limits
        self._leader = leader
        self._last_event = last_event
        self._noted: datetime | None = None
        self._stuck: dict[tuple[str, int], StuckReason] = {}
        self._saved: dict[tuple[str, int], StuckReason] | None = None
        """The verdicts this process last recorded in the store; None: not recorded (yet) as leader."""

    async def tick(self) -> None:
        now = self._clock.now()
        unfinished = await self._store.unfinished()
        last_successes = await self._store.last_successes()
        stuck = stuck_imports(unfinished, now=now, limits=self._limits)
        self._metrics.refresh_progress(unfinished, last_successes, now)
        self._metrics.refresh_stuck(stuck)
        self._log_changes(stuck)
        if self._leader.leading:
            await self._save_stuck(stuck, now)
            await self._count_outbox()
        else:
            self._saved = None
        await self._note_last_event()

    async def _save_stuck(self, stuck: dict[tuple[str, int], StuckReason], now: datetime) -> None:
        if stuck != self._saved:
            await self._store.save_stuck(stuck, now)
            self._saved = stuck

    async def _count_outbox(self) -> None:
        claimed = await self._store.claim_effects(lease=self._leader.token)
        for found in claimed:
            self._metrics.record_effects(found.record, found.effects)
        if claimed:
            log.info("outbox.counted", imports=len(claimed), effects=sum(len(c.effects) for c in claimed))

    async def _note_last_event(self) -> None:
        latest = self._last_event()
        if latest is not None and latest != self._noted:
            await self._store.note_last_event(latest)
            self._noted = latest

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
