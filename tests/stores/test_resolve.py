"""`sis-consumer resolve` against every store: the operator's finish is journaled with its reason
and counted once, by a daemon, like any other finish."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.resolve import resolution
from consumer.core.tracker import Finished, State
from tests.support.records import ACCOUNT, NOW, obs
from tests.support.stores import OpenStore

WHY = "aborted in the Canvas UI (ticket 4711)"
LATER = NOW + timedelta(minutes=1)


async def test_a_resolved_import_is_counted_once_by_a_daemon_and_journaled_with_its_reason(
    open_store: OpenStore,
) -> None:
    async with open_store() as daemon:
        await daemon.apply(obs(State.IMPORTING, 0), NOW)

    async with open_store(owner=None) as command:
        record = await command.record(ACCOUNT, 101)
        await command.apply(resolution(record, (ACCOUNT, 101), State.ABORTED, WHY, LATER), LATER, "operator")

    async with open_store() as daemon:
        claimed = await daemon.claim_effects()
        again = await daemon.claim_effects()
        journal = await daemon.journal(ACCOUNT, 101)
        unfinished = await daemon.unfinished()

    assert [(c.record.state, e) for c in claimed for e in c.effects if isinstance(e, Finished)] == [
        (State.ABORTED, Finished(State.ABORTED))
    ]
    assert again == []
    assert unfinished == []
    assert [(j.source, j.state, j.note) for j in journal] == [
        ("event", State.IMPORTING, None),
        ("operator", State.ABORTED, WHY),
    ]
    assert journal[-1].message_id == "operator"
