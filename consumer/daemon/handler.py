"""One message, start to finish, up to the ack decision: decode, check, apply, report.

The outcome is `Ack | Retry | DeadLetter`; only the worker turns it into SQS calls. `handle` never
raises: a message that keeps failing for a reason nobody foresaw (a bug) is retried a few times,
then dead-lettered with that reason, instead of coming back for ever.

A message given up on (`invalid`) is counted on the receive where it is first given up on: with
no DLQ configured it stays in the queue until its redrive policy moves it, and each later receive
must not count it again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import structlog

from consumer.ack import ACK, DeadLetter, Message, Outcome, Retry, retry_delay
from consumer.core.events import OtherEvent, SisBatchEvent, Undecodable, decode, too_far_ahead
from consumer.core.tracker import (
    FAILED,
    Applied,
    DurationMeasured,
    Finished,
    Observation,
    StageMeasured,
    Verdict,
)
from consumer.errors import StoreUnavailable
from consumer.observability.metrics import Metrics
from consumer.ports import ImportStore
from consumer.redaction import redact_text

log = structlog.get_logger("sis_consumer.handler")

GIVE_UP_AFTER: Final = 3
"""Receives of a message that makes the handler fail unexpectedly before it is dead-lettered."""


def observation(event: SisBatchEvent) -> Observation:
    return Observation(
        account=event.account,
        sis_batch_id=event.sis_batch_id,
        state=event.state,
        at=event.event_time,
        source="event",
        account_id=event.account_id,
        request_id=event.request_id,
        developer_key_id=event.developer_key_id,
        user_agent=event.user_agent,
    )


class MessageHandler:
    def __init__(self, store: ImportStore, metrics: Metrics, accounts: frozenset[str]) -> None:
        self._store = store
        self._metrics = metrics
        self._accounts = accounts
        # The hot path: most messages are other Live Events; skip the label lookup for them.
        self._ignored = metrics.events.labels("other", "ignored")
        self.last_event_at: datetime | None = None
        """When the latest SIS event was received."""

    async def handle(self, message: Message) -> Outcome:
        """What to do with the message. Never raises."""
        event = decode(message.body)
        if isinstance(event, OtherEvent):
            self._ignored.inc()
            log.debug("live_event.ignored", event_name=event.name, message_id=message.message_id)
            return ACK
        if isinstance(event, Undecodable):
            return self._invalid(message, event)
        try:
            return await self._sis_event(message, event)
        except Exception as exc:  # a bug, not bad input: the last line of defence
            return self._failed(message, event, exc)

    def _failed(self, message: Message, event: SisBatchEvent, exc: Exception) -> Outcome:
        log.exception(
            "message.handler_crashed",
            message_id=message.message_id,
            receive_count=message.receive_count,
            sis_batch_id=event.sis_batch_id,
            account=event.account,
        )
        if message.receive_count < GIVE_UP_AFTER:
            return Retry(retry_delay(message.receive_count))
        reason = redact_text(f"the handler failed {GIVE_UP_AFTER} times: {type(exc).__name__}: {exc}")
        return self._invalid(message, Undecodable(reason[:1000], event.name), given_up_at=GIVE_UP_AFTER)

    def _invalid(self, message: Message, error: Undecodable, given_up_at: int = 1) -> Outcome:
        if message.receive_count <= given_up_at:
            self._metrics.events.labels(error.event_name or "other", "invalid").inc()
        log.warning(
            "message.invalid",
            reason=error.reason,
            message_id=message.message_id,
            receive_count=message.receive_count,
            size=len(message.body),
        )
        return DeadLetter(error.reason)

    async def _sis_event(self, message: Message, event: SisBatchEvent) -> Outcome:
        context: dict[str, Any] = {
            "message_id": message.message_id,
            "sis_batch_id": event.sis_batch_id,
            "account": event.account,
            "event_name": event.name,
            "workflow_state": event.state.value,
        }
        if self._accounts and event.account not in self._accounts:
            self._metrics.events.labels(event.name, "rejected").inc()
            log.info("sis_batch.rejected", reason="account not in SIS_CONSUMER_ACCOUNTS", **context)
            return ACK
        now = message.received_at
        untrue = too_far_ahead(event, now)
        if untrue is not None:
            return self._invalid(message, Undecodable(f"{event.name}: {untrue}", event.name))
        try:
            applied = await self._store.apply(observation(event), now, message.message_id)
        except StoreUnavailable as exc:
            delay = retry_delay(message.receive_count)
            log.warning("sis_batch.retry", error=str(exc), retry_in_seconds=delay, **context)
            return Retry(delay)
        self._metrics.record_applied(applied)
        self._metrics.events.labels(event.name, applied.verdict.value).inc()
        self._metrics.event_delivery.observe(max(0.0, (now - event.event_time).total_seconds()))
        self._metrics.last_event.set(now.timestamp())
        self.last_event_at = now
        emit = getattr(log, _level(applied))
        emit(
            _EVENT_NAMES.get(applied.verdict, f"sis_batch.{applied.verdict.value}"),
            **context,
            **summary(applied),
        )
        return ACK


# What a person reads in the log: "stale" read as an alarm, while an earlier state arriving after a
# later one is Canvas's normal behaviour, and ignored. The metric label keeps `stale` (a public contract).
_EVENT_NAMES = {Verdict.STALE: "sis_batch.late_ignored"}


def _level(applied: Applied) -> str:
    """A failed or aborted import: warning. Redeliveries and late events that report nothing new
    are normal: debug (still counted in sis_consumer_events_total)."""
    finished = next((e.state for e in applied.effects if isinstance(e, Finished)), None)
    if finished in FAILED:
        return "warning"
    return "info" if applied.verdict is Verdict.APPLIED or finished is not None else "debug"


def summary(applied: Applied) -> dict[str, Any]:
    """The record's state and what this message made known, for the one log line."""
    record = applied.record
    out: dict[str, Any] = {"state": record.state.value, "origin": record.origin.value}
    for effect in applied.effects:
        if isinstance(effect, Finished):
            out["finished"] = effect.state.value
        elif isinstance(effect, DurationMeasured):
            out["duration_seconds"] = round(effect.seconds, 3)
        elif isinstance(effect, StageMeasured):
            out[f"{effect.stage.value}_seconds"] = round(effect.seconds, 3)
    return out
