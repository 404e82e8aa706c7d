"""Ask Canvas what events cannot tell: silent aborts, cleanup, lost events, and the results.

One request at a time (the client holds a lock per token), spaced by `spacing`, and each import is
asked about at most once per `reconcile_after`, so catching up after an outage is a steady trickle,
not a storm. Answers go through the same `apply` as events (source `api`).

A 401 or a (non-throttling) 403 is about the token, not the import: the tick stops at the first
one and Canvas is left alone for `reconcile_after`, doubling up to `MAX_REFUSED_PAUSE` while it
keeps refusing. A person has to fix the token; asking again every tick only burns its budget.
Meanwhile the leader exports since when Canvas refuses the token, from the latest answer to any
call, and asks at least every `TOKEN_CHECK_EVERY` even with nothing to reconcile: a token revoked on
a quiet weekend pages, and the page holds through the pauses until a call succeeds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final, Protocol, TypeVar

import structlog

from consumer.core.backoff import backoff_seconds
from consumer.core.reconcile import ReconcileResult, classify, due_for_check, pace
from consumer.core.sis_import import api_observation, result_summary
from consumer.core.tracker import FAILED, ImportRecord
from consumer.daemon.loops import every, pause
from consumer.errors import CanvasError, CanvasForbidden, CanvasNotFound, CanvasUnauthorized
from consumer.observability.metrics import Metrics
from consumer.ports import CanvasReader, Clock, ImportStore, Leader, ResultStore

log = structlog.get_logger("sis_consumer.reconciler")
T = TypeVar("T")

_LOGGED_RESULT = ("warning_count", "error_count", "first_warnings", "first_errors", "errors_attachment")
"""What `import.finished` carries of the result summary."""
MAX_REFUSED_PAUSE: Final = 3600.0
"""The longest wait after Canvas refused the token, however often it did."""
TOKEN_CHECK_EVERY: Final = 3600.0
"""The longest the leader goes without asking Canvas anything (`accounts/self` when nothing else)."""


class Reconciled(ImportStore, ResultStore, Protocol):
    """The store roles the reconciler uses."""


@dataclass(frozen=True, slots=True)
class ReconcileSettings:
    reconcile_after: float = 600.0
    spacing: float = 1.0
    """Seconds between two Canvas requests."""
    interval: float = 5.0
    look_again_after: float = 600.0
    """When a finished import had messages but no errors_attachment yet, fetch it once more then."""


class Reconciler:
    def __init__(
        self,
        canvas: CanvasReader,
        store: Reconciled,
        metrics: Metrics,
        clock: Clock,
        settings: ReconcileSettings,
        leader: Leader,
    ) -> None:
        self._canvas = canvas
        self._leader = leader
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._settings = settings
        self._checked: dict[tuple[str, int], datetime] = {}
        self._refusals = 0
        self._refused_until: datetime | None = None
        self._asked_at: datetime | None = None
        self._refused_since: datetime | None = None
        self.account: str | None = None
        self.account_id: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        async def tick() -> None:
            await (self._learn_account(stop) if self.account is None else self.tick(stop))

        await every(self._settings.interval, tick, stop, failed="reconcile.tick_failed")

    async def _lead(self, stop: asyncio.Event) -> None:
        """Wait until this replica leads: only the leader talks to Canvas."""
        while not stop.is_set() and not self._leader.leading:
            self._report_token()
            await pause(stop, self._settings.interval)

    async def _learn_account(self, stop: asyncio.Event) -> None:
        """Which root account this Canvas token serves: only its imports are reconciled."""
        attempt = 0
        while not stop.is_set():
            await self._lead(stop)
            if stop.is_set():
                return
            try:
                account = await self._ask(self._canvas.account("self"))
                self.account, self.account_id = str(account["uuid"]), str(account["id"])
                self._metrics.prime_account(self.account)
                log.info("reconcile.account", account=self.account, account_id=self.account_id)
                return
            except (CanvasError, KeyError) as exc:
                attempt += 1
                log.warning("reconcile.account_unknown", error=str(exc), attempt=attempt)
                await pause(stop, backoff_seconds(attempt, base=2.0, cap=300.0))

    async def tick(self, stop: asyncio.Event) -> None:
        """Ask about quiet imports, then fetch finished imports' results, one request at a time;
        stop at once when asked to, or when this replica stops leading."""
        self._report_token()  # a drop-folder POST may have had an answer since
        if self.account is None or not self._leader.leading:
            return
        now = self._clock.now()
        if self._refused_until is not None and now < self._refused_until:
            return
        if not await self._check_token(now):
            return
        unfinished = await self._store.unfinished()
        # Forget what is no longer unfinished: the map must not grow with every import ever seen.
        self._checked = {r.key: self._checked[r.key] for r in unfinished if r.key in self._checked}
        due = due_for_check(
            unfinished,
            account=self.account,
            now=now,
            reconcile_after=self._settings.reconcile_after,
            last_checked=self._checked,
        )
        for record in due:
            if stop.is_set() or not self._leader.leading or not await self._check(record):
                return
            await pause(stop, self._pace())
        for record, second_look in await self._store.results_due(self.account, self._clock.now()):
            if stop.is_set() or not self._leader.leading or not await self._fetch_result(record, second_look):
                return
            await pause(stop, self._pace())

    async def _check(self, record: ImportRecord) -> bool:
        """Look one import up; False when Canvas is unavailable (stop for this tick)."""
        self._checked[record.key] = self._clock.now()
        account_id = record.account_id or self.account_id
        assert account_id is not None
        context = {"account": record.account, "sis_batch_id": record.sis_batch_id, "was": record.state.value}
        try:
            sis_import = await self._ask(self._canvas.sis_import(account_id, record.sis_batch_id))
        except CanvasNotFound:
            self._count(ReconcileResult.NOT_FOUND)
            log.warning("reconcile.not_found", **context)
            return True
        except CanvasError as exc:
            self._count(ReconcileResult.ERROR)
            if _refused(exc):
                return self._refused(exc, record)
            log.warning("reconcile.failed", error=str(exc), **context)
            return not exc.retryable
        self._refusals = 0
        obs = api_observation(
            sis_import, account=record.account, account_id=account_id, now=self._clock.now()
        )
        if obs is None or obs.sis_batch_id != record.sis_batch_id:
            self._count(ReconcileResult.ERROR)
            log.warning("reconcile.unusable_answer", **context)
            return True
        applied = await self._store.apply(obs, self._clock.now())
        self._metrics.record_applied(applied)
        result = classify(applied)
        self._count(result)
        level = "debug" if result is ReconcileResult.UNCHANGED else "info"
        if applied.record.outcome in FAILED:
            level = "warning"
        getattr(log, level)(f"reconcile.{result.value}", state=applied.record.state.value, **context)
        return True

    async def _fetch_result(self, record: ImportRecord, second_look: bool) -> bool:
        account_id = record.account_id or self.account_id
        assert account_id is not None
        try:
            sis_import = await self._ask(self._canvas.sis_import(account_id, record.sis_batch_id))
        except CanvasNotFound:
            sis_import = {}
        except CanvasError as exc:
            if _refused(exc):
                return self._refused(exc, record)
            log.warning("result.fetch_failed", sis_batch_id=record.sis_batch_id, error=str(exc))
            if exc.retryable:
                return False
            sis_import = {}  # Canvas will not say more about this one: record that nothing is known
        self._refusals = 0
        summary = result_summary(sis_import)
        has_messages = summary["warning_count"] or summary["error_count"]
        look_again = None
        if not second_look and has_messages and not summary["errors_attachment"]:
            look_again = self._clock.now() + timedelta(seconds=self._settings.look_again_after)
        first = await self._store.save_result(
            record.account, record.sis_batch_id, summary, self._clock.now(), look_again
        )
        if first:
            self._metrics.import_messages.labels(record.account, "warning").inc(summary["warning_count"])
            self._metrics.import_messages.labels(record.account, "error").inc(summary["error_count"])
            failed = (record.outcome or record.state) in FAILED
            (log.warning if failed else log.info)(
                "import.finished",
                account=record.account,
                sis_batch_id=record.sis_batch_id,
                state=(record.outcome or record.state).value,
                origin=record.origin.value,
                duration_seconds=record.duration_seconds,
                **{k: summary[k] for k in _LOGGED_RESULT},
            )
        return True

    async def _ask(self, call: Awaitable[T]) -> T:
        """One Canvas call; whatever it answers, the token's state follows the latest answer."""
        self._asked_at = self._clock.now()
        try:
            return await call
        finally:
            self._report_token()

    async def _check_token(self, now: datetime) -> bool:
        """Ask Canvas something cheap when nothing did for TOKEN_CHECK_EVERY, so that the token's
        state is never older than that. False: Canvas refused it (the tick stops)."""
        if self._asked_at is not None and (now - self._asked_at).total_seconds() < TOKEN_CHECK_EVERY:
            return True
        try:
            await self._ask(self._canvas.account("self"))
        except CanvasError as exc:
            if _refused(exc):
                return self._refused(exc, None)
            log.warning("reconcile.token_check_failed", error=str(exc))
            return not exc.retryable
        self._refusals = 0
        return True

    def _report_token(self) -> None:
        """Since when Canvas refuses the token, 0 while it accepts it; NaN when not leading or not
        known yet (the gauge is the leader's alone: a follower's would be stale)."""
        refused = self._canvas.token_refused if self._leader.leading else None
        if refused is None:
            value = float("nan")
        elif refused:
            self._refused_since = self._refused_since or self._clock.now()
            value = self._refused_since.timestamp()
        else:
            self._refused_since, value = None, 0.0
        self._metrics.canvas_token_refused_since.set(value)

    def _refused(self, exc: CanvasError, record: ImportRecord | None) -> bool:
        """Leave Canvas alone for a while; False: this tick stops here."""
        self._refusals += 1
        pause_seconds = min(
            MAX_REFUSED_PAUSE, self._settings.reconcile_after * 2 ** min(self._refusals - 1, 20)
        )
        self._refused_until = self._clock.now() + timedelta(seconds=pause_seconds)
        about = {} if record is None else {"account": record.account, "sis_batch_id": record.sis_batch_id}
        log.error(
            "reconcile.refused",
            **about,
            status=exc.status,
            error=str(exc),
            retry_in_seconds=pause_seconds,
            detail="Canvas refuses the token: revoked, expired, or without the permission",
        )
        return False

    def _pace(self) -> float:
        """`spacing`, or longer when Canvas's rate-limit bucket runs low."""
        return pace(self._settings.spacing, self._canvas.remaining, self._canvas.most_remaining)

    def _count(self, result: ReconcileResult) -> None:
        self._metrics.reconciliations.labels(result.value).inc()


def _refused(exc: CanvasError) -> bool:
    """A 401, or a 403 that is not throttling: the token, not the import, is the problem."""
    return isinstance(exc, CanvasUnauthorized | CanvasForbidden)
