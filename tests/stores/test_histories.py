"""Each account's recent successful runs, what stuck thresholds are learned from (`core.learned`).

SQLite derives them from its imports; DynamoDB appends each run to its account's item where the
success is committed (one update, no read), so that the watchdog reads them with the one Query it
makes anyway, and readers merge and compact. Both must answer the same.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from consumer.adapters import dynamodb_writes as w
from consumer.adapters.dynamodb_restore import restore
from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.learned import HISTORY_SIZE, AccountHistory, Run, remember
from consumer.core.tracker import State
from consumer.ports import Store
from consumer.sandbox.local_sqs import REGION
from tests.support.dynamodb import create_table, new_table_name
from tests.support.records import ACCOUNT, KEEP_JOURNAL, NOW, OTHER_ACCOUNT, T0, obs


async def lifecycle(
    store: Store, batch: int, start: float, queued: float, importing: float, end: State
) -> None:
    """created at T0 + `start` minutes, importing `queued` minutes later, `end` after `importing`."""
    await store.apply(obs(State.CREATED, start, batch=batch), NOW)
    await store.apply(obs(State.IMPORTING, start + queued, batch=batch), NOW)
    await store.apply(obs(end, start + queued + importing, batch=batch), NOW)


async def test_histories_hold_each_accounts_successful_runs_newest_first(store: Store) -> None:
    await lifecycle(store, 1, 0, 2, 10, State.IMPORTED)
    await lifecycle(store, 2, 60, 1, 20, State.IMPORTED_WITH_MESSAGES)
    await lifecycle(store, 3, 120, 1, 300, State.FAILED)  # not a success: not learned from
    await store.apply(obs(State.IMPORTED, 30, batch=9, account=OTHER_ACCOUNT), NOW)

    histories = await store.histories()

    finished_2 = T0 + timedelta(minutes=81)
    assert histories == {
        ACCOUNT: AccountHistory(
            finished_2,
            (Run(2, finished_2, 60.0, 1200.0), Run(1, T0 + timedelta(minutes=12), 120.0, 600.0)),
        ),
        OTHER_ACCOUNT: AccountHistory(
            T0 + timedelta(minutes=30), (Run(9, T0 + timedelta(minutes=30), None, None),)
        ),
    }


async def test_an_account_without_a_success_has_no_history(store: Store) -> None:
    await lifecycle(store, 1, 0, 2, 10, State.ABORTED)
    await store.apply(obs(State.IMPORTING, 0, batch=2), NOW)

    assert await store.histories() == {}


async def test_a_history_keeps_only_the_latest_runs(store: Store) -> None:
    for batch in range(HISTORY_SIZE + 2):
        await store.apply(obs(State.IMPORTED, batch, batch=batch), NOW)

    (history,) = (await store.histories()).values()

    assert len(history.runs) == HISTORY_SIZE
    assert [r.sis_batch_id for r in history.runs] == list(range(HISTORY_SIZE + 1, 1, -1))
    assert history.last_success == T0 + timedelta(minutes=HISTORY_SIZE + 1)


async def test_a_late_importing_event_completes_the_run_and_a_redelivery_changes_nothing(
    store: Store,
) -> None:
    await store.apply(obs(State.CREATED, 0), NOW)
    await store.apply(obs(State.IMPORTED, 10), NOW)
    await store.apply(obs(State.IMPORTING, 4), NOW)  # overtaken by the finish: stale, but a stage time
    await store.apply(obs(State.IMPORTED, 10), NOW)  # redelivered

    (history,) = (await store.histories()).values()

    assert history.runs == (Run(101, T0 + timedelta(minutes=10), 240.0, 360.0),)


async def test_a_dynamodb_history_grown_by_appends_is_read_merged_and_compacted(aws: None) -> None:
    """Replicas append runs without reading (an import may be appended twice, in any order); the
    first reader that finds the list past twice its size rewrites it to the latest runs."""
    table = new_table_name()
    await create_table(table)
    appended = [Run(b, T0 + timedelta(minutes=b), 60.0, None) for b in range(2 * HISTORY_SIZE + 1)]
    appended.append(Run(5, T0 + timedelta(minutes=5), None, 300.0))  # a late stage time of import 5
    async with open_dynamodb(table, region=REGION) as dynamodb:
        for run in reversed(appended):
            await dynamodb.db.write([w.append_run(ACCOUNT, run)])
        first = await dynamodb.histories()
        stored = await dynamodb.db.get(w.account_key(ACCOUNT))
        second = await dynamodb.histories()

    expected = remember(appended)
    assert first == second == {ACCOUNT: AccountHistory(expected[0].finished_at, expected)}
    assert stored is not None
    assert len(stored["runs"]["L"]) == HISTORY_SIZE


async def test_store_copy_carries_the_histories_into_dynamodb_and_twice_changes_nothing(
    tmp_path: Path, aws: None
) -> None:
    async with open_sqlite(tmp_path / "state.db", retention_seconds=KEEP_JOURNAL) as sqlite:
        await lifecycle(sqlite, 1, 0, 2, 10, State.IMPORTED)
        await lifecycle(sqlite, 2, 60, 1, 20, State.IMPORTED)
        await sqlite.apply(obs(State.IMPORTED, 5, batch=3, account=OTHER_ACCOUNT), NOW)
        expected = await sqlite.histories()
        export = await sqlite.export()
    table = new_table_name()
    await create_table(table)

    async with open_dynamodb(table, region=REGION) as dynamodb:
        await restore(dynamodb.db, export)
        await restore(dynamodb.db, export)
        copied = await dynamodb.histories()

    assert copied == expected
