"""The stuck role of every store: the watchdog's verdicts, kept for the commands to read."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.stuck import StuckReason, StuckVerdict
from consumer.core.tracker import State
from consumer.ports import Store
from tests.support.records import ACCOUNT, NOW, OTHER_ACCOUNT, obs
from tests.support.stores import OpenStore

LATER = NOW + timedelta(minutes=5)


async def test_a_store_without_verdicts_reads_none(store: Store) -> None:
    assert await store.stuck() == {}


async def test_saved_verdicts_are_read_back_with_the_time_they_were_first_judged(store: Store) -> None:
    await store.save_stuck(
        {(ACCOUNT, 1): StuckReason.RUNNING_TOO_LONG, (OTHER_ACCOUNT, 2): StuckReason.SILENT}, NOW
    )

    assert await store.stuck() == {
        (ACCOUNT, 1): StuckVerdict(StuckReason.RUNNING_TOO_LONG, NOW),
        (OTHER_ACCOUNT, 2): StuckVerdict(StuckReason.SILENT, NOW),
    }


async def test_saving_again_keeps_unchanged_verdicts_dates_a_new_reason_and_drops_recovered_ones(
    store: Store,
) -> None:
    await store.save_stuck(
        {
            (ACCOUNT, 1): StuckReason.RUNNING_TOO_LONG,
            (ACCOUNT, 2): StuckReason.SILENT,
            (ACCOUNT, 3): StuckReason.NEVER_STARTED,
        },
        NOW,
    )

    await store.save_stuck(
        {(ACCOUNT, 1): StuckReason.RUNNING_TOO_LONG, (ACCOUNT, 2): StuckReason.ORPHANED}, LATER
    )

    assert await store.stuck() == {
        (ACCOUNT, 1): StuckVerdict(StuckReason.RUNNING_TOO_LONG, NOW),
        (ACCOUNT, 2): StuckVerdict(StuckReason.ORPHANED, LATER),
    }


async def test_verdicts_survive_a_restart_and_are_separate_from_the_imports(open_store: OpenStore) -> None:
    async with open_store() as first:
        await first.apply(obs(State.IMPORTING, 0), NOW)
        await first.save_stuck({(ACCOUNT, 101): StuckReason.RUNNING_TOO_LONG}, NOW)

    async with open_store(owner=None) as command:  # what `sis-consumer imports` opens
        assert await command.stuck() == {(ACCOUNT, 101): StuckVerdict(StuckReason.RUNNING_TOO_LONG, NOW)}
        assert [r.sis_batch_id for r in await command.records()] == [101]


async def test_saving_no_verdicts_clears_them(store: Store) -> None:
    await store.save_stuck({(ACCOUNT, 1): StuckReason.ORPHANED}, NOW)

    await store.save_stuck({}, LATER)

    assert await store.stuck() == {}
