"""The results role of every store: finished imports whose SisImport is to be fetched, once."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.tracker import State
from consumer.ports import Store
from tests.support.records import ACCOUNT, NOW, OTHER_ACCOUNT, obs

SUMMARY = {"warning_count": 2, "error_count": 0, "errors_attachment": False}


async def test_a_finished_import_is_due_its_result_once_saved_it_is_not(store: Store) -> None:
    await store.apply(obs(State.IMPORTING, 0, batch=1), NOW)
    await store.apply(obs(State.IMPORTED, 5, batch=2), NOW)
    await store.apply(obs(State.FAILED, 5, batch=3, account=OTHER_ACCOUNT), NOW)

    due = await store.results_due(ACCOUNT, NOW)
    assert [(r.sis_batch_id, second) for r, second in due] == [(2, False)]

    first = await store.save_result(ACCOUNT, 2, SUMMARY, NOW, None)

    assert first is True
    assert await store.results_due(ACCOUNT, NOW) == []
    assert await store.results() == {(ACCOUNT, 2): SUMMARY}


async def test_a_second_look_is_due_at_its_time_and_is_not_a_first_save(store: Store) -> None:
    await store.apply(obs(State.IMPORTED_WITH_MESSAGES, 5), NOW)
    later = NOW + timedelta(minutes=10)
    await store.save_result(ACCOUNT, 101, SUMMARY, NOW, later)

    assert await store.results_due(ACCOUNT, later - timedelta(seconds=1)) == []
    due = await store.results_due(ACCOUNT, later)
    assert [(r.sis_batch_id, second) for r, second in due] == [(101, True)]

    again = await store.save_result(ACCOUNT, 101, {**SUMMARY, "errors_attachment": True}, later, None)

    assert again is False
    assert await store.results_due(ACCOUNT, later + timedelta(days=1)) == []
    assert (await store.results())[(ACCOUNT, 101)]["errors_attachment"] is True


async def test_results_due_are_the_earliest_finished_first_up_to_the_limit(store: Store) -> None:
    for batch, minute in ((1, 30), (2, 10), (3, 20)):
        await store.apply(obs(State.IMPORTED, minute, batch=batch), NOW)

    due = await store.results_due(ACCOUNT, NOW, limit=2)

    assert [r.sis_batch_id for r, _ in due] == [2, 3]
