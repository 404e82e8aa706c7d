"""The imports role of every store: what `apply` keeps, and the queries the daemon runs on it."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.tracker import State, Verdict, apply
from consumer.ports import Store
from tests.support.records import ACCOUNT, NOW, OTHER_ACCOUNT, T0, obs
from tests.support.stores import OpenStore


async def test_record_round_trips_identical_to_what_tracker_apply_returned(store: Store) -> None:
    observations = [obs(State.INITIALIZING, 0, user_agent="sis-uploader/2.1"), obs(State.IMPORTING, 3)]
    expected = None
    for o in observations:
        expected = apply(expected.record if expected else None, o, NOW)
        await store.apply(o, NOW)
    assert expected is not None

    assert await store.records() == [expected.record]
    assert await store.record(ACCOUNT, 101) == expected.record


async def test_apply_returns_what_tracker_apply_returns(store: Store) -> None:
    first = await store.apply(obs(State.CREATED, 0), NOW)
    finished = await store.apply(obs(State.IMPORTED, 30), NOW + timedelta(minutes=1))

    assert finished == apply(first.record, obs(State.IMPORTED, 30), NOW + timedelta(minutes=1))


async def test_a_redelivered_observation_is_a_duplicate_with_no_effects(store: Store) -> None:
    await store.apply(obs(State.CREATED, 0), NOW)
    first = await store.apply(obs(State.IMPORTED, 30), NOW)

    again = await store.apply(obs(State.IMPORTED, 30), NOW + timedelta(seconds=5))

    assert first.effects
    assert (again.verdict, again.effects) == (Verdict.DUPLICATE, ())


async def test_an_unknown_import_has_no_record(store: Store) -> None:
    assert await store.record(ACCOUNT, 999) is None


async def test_data_survives_close_and_reopen(open_store: OpenStore) -> None:
    async with open_store() as first:
        applied = await first.apply(obs(State.IMPORTED_WITH_MESSAGES, 10), NOW)

    async with open_store() as second:
        assert await second.records() == [applied.record]
        duplicate = await second.apply(obs(State.IMPORTED_WITH_MESSAGES, 10), NOW)

    assert duplicate.verdict is Verdict.DUPLICATE


async def test_unfinished_excludes_finished_and_restored_imports(store: Store) -> None:
    for batch, states in {
        1: [State.INITIALIZING],
        2: [State.IMPORTING],
        3: [State.IMPORTED],
        4: [State.FAILED],
        5: [State.ABORTED],
        6: [State.IMPORTED, State.RESTORING],
        7: [State.IMPORTED, State.RESTORING, State.RESTORED],
        8: [State.FAILED, State.PARTIALLY_RESTORED],
    }.items():
        for minute, state in enumerate(states):
            await store.apply(obs(state, minute, batch=batch), NOW)

    unfinished = await store.unfinished()

    assert sorted(r.sis_batch_id for r in unfinished) == [1, 2, 6]


async def test_an_import_leaves_unfinished_when_it_finishes(store: Store) -> None:
    await store.apply(obs(State.IMPORTING, 0), NOW)
    assert [r.sis_batch_id for r in await store.unfinished()] == [101]

    await store.apply(obs(State.IMPORTED, 5), NOW)

    assert await store.unfinished() == []


async def test_last_successes_is_the_latest_successful_finish_per_account(store: Store) -> None:
    await store.apply(obs(State.IMPORTED, 10, batch=1), NOW)
    await store.apply(obs(State.IMPORTED_WITH_MESSAGES, 70, batch=2), NOW)
    await store.apply(obs(State.IMPORTED, 40, batch=3), NOW)
    await store.apply(obs(State.FAILED, 500, batch=4), NOW)  # later, but not a success
    await store.apply(obs(State.IMPORTED, 5, batch=1, account=OTHER_ACCOUNT), NOW)
    await store.apply(obs(State.ABORTED, 5, batch=9, account="only-failures"), NOW)

    successes = await store.last_successes()

    assert successes == {
        ACCOUNT: T0 + timedelta(minutes=70),
        OTHER_ACCOUNT: T0 + timedelta(minutes=5),
    }


async def test_records_are_newest_first(store: Store) -> None:
    for batch in (1, 2, 3):
        await store.apply(obs(State.CREATED, 0, batch=batch), NOW + timedelta(hours=batch % 3))

    records = await store.records()

    assert [r.sis_batch_id for r in records] == [2, 1, 3]


async def test_records_filter_on_state(store: Store) -> None:
    await store.apply(obs(State.IMPORTING, 0, batch=1), NOW)
    await store.apply(obs(State.FAILED, 0, batch=2), NOW + timedelta(minutes=1))
    await store.apply(obs(State.IMPORTING, 0, batch=3), NOW + timedelta(minutes=2))

    records = await store.records(state=State.IMPORTING)

    assert [r.sis_batch_id for r in records] == [3, 1]


async def test_records_filter_on_first_sight_since(store: Store) -> None:
    for batch in (1, 2, 3):
        await store.apply(obs(State.CREATED, 0, batch=batch), NOW + timedelta(hours=batch))
    # A later observation of an old import does not make it new.
    await store.apply(obs(State.IMPORTING, 1, batch=1), NOW + timedelta(hours=9))

    records = await store.records(since=NOW + timedelta(hours=2))

    assert [r.sis_batch_id for r in records] == [3, 2]


async def test_records_filter_on_state_and_since_together(store: Store) -> None:
    await store.apply(obs(State.IMPORTED, 0, batch=1), NOW)
    await store.apply(obs(State.IMPORTED, 0, batch=2), NOW + timedelta(hours=2))
    await store.apply(obs(State.FAILED, 0, batch=3), NOW + timedelta(hours=2))

    records = await store.records(state=State.IMPORTED, since=NOW + timedelta(hours=1))

    assert [r.sis_batch_id for r in records] == [2]


async def test_the_last_event_noted_is_the_latest_and_survives_a_restart(open_store: OpenStore) -> None:
    async with open_store() as first:
        assert await first.last_event_received() is None
        await first.note_last_event(NOW + timedelta(minutes=5))
        await first.note_last_event(NOW)  # an older note, from a slower replica: ignored

    async with open_store() as second:
        assert await second.last_event_received() == NOW + timedelta(minutes=5)


async def test_when_an_account_was_first_expected_to_succeed_survives_a_restart(
    open_store: OpenStore,
) -> None:
    """A schedule counts from the first daemon that knew it: a restart (or a second replica)
    never moves it later, so a scheduled account that never succeeds still pages."""
    async with open_store() as first:
        assert await first.expected_since([ACCOUNT], NOW) == {ACCOUNT: NOW}

    later = NOW + timedelta(hours=30)
    async with open_store() as second:
        found = await second.expected_since([ACCOUNT, OTHER_ACCOUNT], later)
        assert found == {ACCOUNT: NOW, OTHER_ACCOUNT: later}
        assert await second.expected_since([], later) == {}


async def test_ping_succeeds_on_an_open_store(store: Store) -> None:
    await store.ping()
