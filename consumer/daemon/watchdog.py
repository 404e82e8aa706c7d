"""The timer loop: gauges and stuck verdicts recomputed from the store, right after a restart too.

Each account is judged by thresholds learned from its own recent successes (`core.learned`), and
only accounts of SIS_CONSUMER_ACCOUNTS (when set) are watched. An import waiting behind its
account's own running import is not waiting for Canvas: its wait counts from when the account was
last seen busy (by this process; after a restart, from the account's latest success). The leader
also records the stuck verdicts in the store whenever they change (what `sis-consumer imports
--stuck` shows), counts effects that another process committed and nobody counted (the outbox),
and every replica writes down when it last received a Live Event, for the gauge after a restart,
and exports since when each scheduled account has been expected to succeed (kept in the store).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

import structlog

from consumer.core.learned import AccountHistory, Learning, thresholds_for
from consumer.core.links import import_links
from consumer.core.stuck import StuckReason, StuckThresholds, running_imports, stuck_imports
from consumer.core.tracker import ImportRecord
from consumer.daemon.loops import every
from consumer.observability.metrics import Metrics
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
        *,
        learning: Learning | None = None,
        accounts: frozenset[str] = frozenset(),
        canvas_url: str | None = None,
        expect_success: Sequence[str] = (),
        on_refreshed: Callable[[], None] = lambda: None,
    ) -> None:
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._interval = interval
        self._limits = limits
        self._leader = leader
        self._last_event = last_event
        self._learning = learning or Learning()
        self._accounts = accounts
        self._canvas_url = canvas_url
        self._noted: datetime | None = None
        self._stuck: dict[tuple[str, int], StuckReason] = {}
        self._saved: dict[tuple[str, int], StuckReason] | None = None
        """The verdicts this process last recorded in the store; None: not recorded (yet) as leader."""
        self._on_refreshed = on_refreshed
        """Told at each refresh of the gauges: /livez fails when it stops (`observability.http`)."""
        self._expect_success = tuple(expect_success)
        self._expected_since: dict[str, datetime] | None = None
        self._busy_at: dict[str, datetime] = {}
        """When this process last saw each account busy (an import running, not too long)."""

    async def tick(self) -> None:
        now = self._clock.now()
        unfinished = [r for r in await self._store.unfinished() if self._watched(r.account)]
        histories = {a: h for a, h in (await self._store.histories()).items() if self._watched(a)}
        thresholds = self._thresholds(histories, unfinished)
        last_successes = {a: h.last_success for a, h in histories.items() if h.last_success is not None}
        busy = running_imports(unfinished, now=now, limits=self._limits, by_account=thresholds)
        self._busy_at.update(dict.fromkeys(busy, now))
        stuck = stuck_imports(
            unfinished,
            now=now,
            limits=self._limits,
            by_account=thresholds,
            free_since=self._free_since(last_successes),
        )
        records = {r.key: r for r in unfinished}
        self._metrics.refresh_progress(unfinished, last_successes, now)
        self._metrics.refresh_stuck(stuck, {key: r.account_id for key, r in records.items()})
        self._metrics.refresh_thresholds(thresholds)
        self._metrics.gauges_refreshed.set(now.timestamp())
        self._on_refreshed()
        self._log_changes(stuck, records, thresholds)
        if self._leader.leading:
            await self._save_stuck(stuck, now)
            await self._count_outbox()
        else:
            self._saved = None
        await self._note_last_event()
        await self._note_expected(now)

    async def _note_expected(self, now: datetime) -> None:
        """Once per process: since when each scheduled account is expected to succeed."""
        if self._expected_since is None and self._expect_success:
            self._expected_since = await self._store.expected_since(self._expect_success, now)
            for account, since in self._expected_since.items():
                self._metrics.expected_success_since.labels(account).set(since.timestamp())

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

    def _free_since(self, last_successes: dict[str, datetime]) -> dict[str, datetime]:
        """When each account was last busy: as this process saw it, or its latest success."""
        seen = [self._busy_at, last_successes]
        return {a: max(s[a] for s in seen if a in s) for a in set(self._busy_at) | set(last_successes)}

    def _watched(self, account: str) -> bool:
        return not self._accounts or account in self._accounts

    def _thresholds(
        self, histories: dict[str, AccountHistory], unfinished: list[ImportRecord]
    ) -> dict[str, StuckThresholds]:
        """Every watched account's thresholds: learned, or the fixed ones while its history is short."""
        accounts = set(self._accounts) | set(histories) | {r.account for r in unfinished}
        empty = AccountHistory(None)
        return {a: thresholds_for(histories.get(a, empty), self._limits, self._learning) for a in accounts}

    def _log_changes(
        self,
        stuck: dict[tuple[str, int], StuckReason],
        records: dict[tuple[str, int], ImportRecord],
        thresholds: dict[str, StuckThresholds],
    ) -> None:
        # One line when an import becomes stuck (or changes reason), one when it recovers. The line
        # leads to the import: Canvas's account id, the threshold it crossed, its Canvas URLs.
        for (account, batch), reason in stuck.items():
            if self._stuck.get((account, batch)) is not reason:
                account_id = records[(account, batch)].account_id
                where = {}
                if self._canvas_url and account_id:
                    links = import_links(self._canvas_url, account_id, batch)
                    where = {"canvas_ui_url": links.ui, "canvas_api_url": links.api}
                log.warning(
                    "import.stuck",
                    account=account,
                    account_id=account_id,
                    sis_batch_id=batch,
                    reason=reason.value,
                    threshold_seconds=getattr(thresholds.get(account, self._limits), reason.value),
                    **where,
                )
        for (account, batch), reason in self._stuck.items():
            if (account, batch) not in stuck:
                log.info("import.recovered", account=account, sis_batch_id=batch, was=reason.value)
        self._stuck = stuck

    async def run(self, stop: asyncio.Event) -> None:
        await every(self._interval, self.tick, stop, failed="watchdog.tick_failed")
