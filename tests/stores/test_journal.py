"""The journal of every store: each event and each new fact, but not the same API answer again and
again (a quiet import is asked about every RECONCILE_AFTER; an orphan, for ever)."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.tracker import State
from consumer.ports import Store
from tests.support.records import ACCOUNT, NOW, obs


async def test_an_api_answer_that_changes_nothing_is_not_journaled_again(store: Store) -> None:
    for n in range(5):
        await store.apply(obs(State.INITIALIZING, 0, source="api"), NOW + timedelta(minutes=10 * n))

    journal = await store.journal(ACCOUNT, 101)

    assert [(j.source, j.state, j.verdict) for j in journal] == [("api", State.INITIALIZING, "applied")]


async def test_a_redelivered_event_is_journaled_every_time(store: Store) -> None:
    for n in range(3):
        await store.apply(obs(State.CREATED, 0), NOW + timedelta(minutes=n), message_id=f"m-{n}")

    journal = await store.journal(ACCOUNT, 101)

    assert [(j.message_id, j.verdict) for j in journal] == [
        ("m-0", "applied"),
        ("m-1", "duplicate"),
        ("m-2", "duplicate"),
    ]
