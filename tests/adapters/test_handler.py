"""`MessageHandler` with a real SQLite store: what becomes of a message the daemon cannot use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumer.ack import ACK, DeadLetter, Message, Outcome, Retry
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.core.tracker import Applied, Observation
from consumer.daemon.handler import GIVE_UP_AFTER, MessageHandler
from consumer.observability.metrics import Metrics
from tests.support.live_events import sis_event
from tests.support.records import ACCOUNT, T0


@dataclass
class Rig:
    handler: MessageHandler
    registry: CollectorRegistry

    def invalid(self, kind: str) -> float:
        labels = {"kind": kind, "result": "invalid"}
        return self.registry.get_sample_value("sis_consumer_events_total", labels) or 0.0

    async def receive(self, body: str, receive_count: int, at: datetime | None = None) -> Outcome:
        message = Message("m-1", f"receipt-{receive_count}", body, receive_count)
        return await self.handler.handle(message if at is None else replace(message, received_at=at))


class BrokenStore(SqliteStore):
    """A store with a bug: `apply` raises something no handler expects (the one stand-in here)."""

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        raise RuntimeError("boom: a bug in the store")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(tmp_path / "state.db", owner="test-daemon") as opened:
        yield opened


def rig_for(store: SqliteStore) -> Rig:
    registry = CollectorRegistry()
    return Rig(MessageHandler(store, Metrics(registry), frozenset()), registry)


SIS_EVENT = sis_event(account_uuid=ACCOUNT, account_id=1, sis_batch_id=7, state="importing", at=T0)


async def test_an_invalid_body_is_counted_once_however_often_it_is_received(store: SqliteStore) -> None:
    """With no DLQ configured, the queue's redrive policy hands an invalid message back several times."""
    rig = rig_for(store)

    outcomes = [await rig.receive("not json", n) for n in range(1, 6)]

    assert all(isinstance(o, DeadLetter) and "not valid JSON" in o.reason for o in outcomes)
    assert rig.invalid("other") == 1


async def test_an_unexpected_error_is_retried_before_the_handler_gives_up(store: SqliteStore) -> None:
    rig = rig_for(BrokenStore(store._conn, store._executor, "test-daemon"))

    outcomes = [await rig.receive(SIS_EVENT, n) for n in range(1, GIVE_UP_AFTER)]

    assert all(isinstance(o, Retry) for o in outcomes)
    assert rig.invalid("sis_batch_updated") == 0


async def test_an_unexpected_error_is_dead_lettered_with_its_reason_and_counted_once(
    store: SqliteStore,
) -> None:
    rig = rig_for(BrokenStore(store._conn, store._executor, "test-daemon"))

    outcomes = [await rig.receive(SIS_EVENT, n) for n in range(GIVE_UP_AFTER, GIVE_UP_AFTER + 3)]

    assert all(isinstance(o, DeadLetter) for o in outcomes)
    assert isinstance(outcomes[0], DeadLetter)
    assert outcomes[0].reason == (
        f"the handler failed {GIVE_UP_AFTER} times: RuntimeError: boom: a bug in the store"
    )
    assert rig.invalid("sis_batch_updated") == 1


async def test_an_event_from_the_far_future_is_dead_lettered_and_sets_no_last_success(
    store: SqliteStore,
) -> None:
    rig = rig_for(store)
    future = datetime(9999, 12, 31, 23, 59, tzinfo=UTC)
    body = sis_event(account_uuid=ACCOUNT, account_id=1, sis_batch_id=8, state="imported", at=future)

    outcome = await rig.receive(body, 1)

    assert isinstance(outcome, DeadLetter)
    assert (
        outcome.reason
        == "sis_batch_updated: metadata.event_time 9999-12-31T23:59:00+00:00 is ahead of our clock"
    )
    assert rig.invalid("sis_batch_updated") == 1
    assert await store.records() == []
    assert (
        rig.registry.get_sample_value(
            "canvas_sis_import_last_success_timestamp_seconds", {"account": ACCOUNT}
        )
        is None
    )


async def test_an_event_is_judged_and_timed_by_when_its_message_was_received(store: SqliteStore) -> None:
    """ "Ahead of our clock" and the delivery latency are measured from the message's receipt."""
    rig = rig_for(store)
    body = sis_event(account_uuid=ACCOUNT, account_id=1, sis_batch_id=9, state="created", at=T0)
    early = await rig.receive(body, 1, at=T0 - timedelta(days=2))

    outcome = await rig.receive(body, 2, at=T0 + timedelta(seconds=42))

    assert isinstance(early, DeadLetter)
    assert outcome == ACK
    (record,) = await store.records()
    assert record.first_seen_at == T0 + timedelta(seconds=42)
    assert rig.registry.get_sample_value("sis_consumer_event_delivery_seconds_sum") == 42.0
