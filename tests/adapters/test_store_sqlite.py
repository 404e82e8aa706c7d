"""`consumer.adapters.store_sqlite` against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.adapters.sqlite_schema import MIGRATIONS
from consumer.adapters.store_sqlite import SqliteStore, describe_effects, open_sqlite
from consumer.core.states import State
from consumer.core.tracker import Applied, Observation, Verdict, apply
from consumer.errors import StoreUnavailable

ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
OTHER_ACCOUNT = "b8aWVJ8woYhnDyMZTwrL0wWtQ4R4A9uIbPa7yLdD"
T0 = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def obs(
    state: State,
    minutes: float,
    *,
    batch: int = 101,
    account: str = ACCOUNT,
    user_agent: str | None = None,
) -> Observation:
    return Observation(
        account=account,
        sis_batch_id=batch,
        state=state,
        at=T0 + timedelta(minutes=minutes),
        account_id="1",
        request_id="1dd9dc6f-2fb0-4c25-b5b8-1a6a5b8d6f0e",
        developer_key_id="170000000000056",
        user_agent=user_agent,
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(db_path) as opened:
        yield opened


def journal(path: Path) -> list[tuple[str, str, str | None, str]]:
    """The journal as another process would read it: (state, verdict, message_id, effects)."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute("SELECT state, verdict, message_id, effects FROM journal ORDER BY seq").fetchall()
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def count_rows(path: Path, table: str) -> int:
    with sqlite3.connect(path) as conn:
        n: int = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
    return n


async def fill_disk(store: SqliteStore) -> None:
    """No page may be added to the file any more: the next write that needs one is SQLITE_FULL."""
    await run_on_store_thread(store, "PRAGMA max_page_count = 1")


async def make_room(store: SqliteStore) -> None:
    await run_on_store_thread(store, "PRAGMA max_page_count = 1073741823")


async def run_on_store_thread(store: SqliteStore, sql: str) -> None:
    # The connection belongs to the store's one thread: run the pragma there, between transactions.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(store._executor, lambda: store._conn.execute(sql).fetchall())


async def test_record_round_trips_identical_to_what_tracker_apply_returned(store: SqliteStore) -> None:
    observations = [obs(State.INITIALIZING, 0, user_agent="sis-uploader/2.1"), obs(State.IMPORTING, 3)]
    expected = None
    for o in observations:
        expected = apply(expected.record if expected else None, o, NOW)
        await store.apply(o, NOW)
    assert expected is not None

    (stored,) = await store.records()

    assert stored == expected.record


async def test_apply_returns_what_tracker_apply_returns(store: SqliteStore) -> None:
    first = await store.apply(obs(State.CREATED, 0), NOW)
    finished = await store.apply(obs(State.IMPORTED, 30), NOW + timedelta(minutes=1))

    assert finished == apply(first.record, obs(State.IMPORTED, 30), NOW + timedelta(minutes=1))


async def test_every_observation_appends_one_journal_row_with_its_verdict_and_effects(
    store: SqliteStore, db_path: Path
) -> None:
    sequence = [
        (obs(State.INITIALIZING, 0), "m-1"),
        (obs(State.IMPORTING, 2), "m-2"),
        (obs(State.IMPORTED, 30), "m-3"),
        (obs(State.IMPORTED, 30), "m-3-redelivered"),
    ]
    results: list[Applied] = []
    for o, message_id in sequence:
        results.append(await store.apply(o, NOW, message_id))

    assert journal(db_path) == [
        (o.state.value, r.verdict.value, message_id, describe_effects(r.effects))
        for (o, message_id), r in zip(sequence, results, strict=True)
    ]
    assert [r.verdict for r in results] == [Verdict.APPLIED] * 3 + [Verdict.DUPLICATE]
    assert "Finished" in journal(db_path)[2][3]
    assert journal(db_path)[3][3] == ""


async def test_schema_version_equals_number_of_migrations(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        version = conn.execute("PRAGMA user_version").fetchone()[0]

    assert version == len(MIGRATIONS)


async def test_database_with_newer_schema_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")

    with pytest.raises(StoreUnavailable, match="newer"):
        async with open_sqlite(db_path):
            pass


async def test_wal_journal_mode_is_on(store: SqliteStore, db_path: Path) -> None:
    with sqlite3.connect(db_path) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]

    assert mode == "wal"


async def test_data_survives_close_and_reopen(db_path: Path) -> None:
    async with open_sqlite(db_path) as first:
        applied = await first.apply(obs(State.IMPORTED_WITH_MESSAGES, 10), NOW)

    async with open_sqlite(db_path) as second:
        assert await second.records() == [applied.record]
        duplicate = await second.apply(obs(State.IMPORTED_WITH_MESSAGES, 10), NOW)

    assert duplicate.verdict is Verdict.DUPLICATE


async def test_unfinished_excludes_finished_and_restored_imports(store: SqliteStore) -> None:
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


async def test_last_successes_is_the_latest_successful_finish_per_account(store: SqliteStore) -> None:
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


async def test_records_are_newest_first(store: SqliteStore) -> None:
    for batch in (1, 2, 3):
        await store.apply(obs(State.CREATED, 0, batch=batch), NOW + timedelta(hours=batch % 3))

    records = await store.records()

    assert [r.sis_batch_id for r in records] == [2, 1, 3]


async def test_records_filter_on_state(store: SqliteStore) -> None:
    await store.apply(obs(State.IMPORTING, 0, batch=1), NOW)
    await store.apply(obs(State.FAILED, 0, batch=2), NOW + timedelta(minutes=1))
    await store.apply(obs(State.IMPORTING, 0, batch=3), NOW + timedelta(minutes=2))

    records = await store.records(state=State.IMPORTING)

    assert [r.sis_batch_id for r in records] == [3, 1]


async def test_records_filter_on_first_sight_since(store: SqliteStore) -> None:
    for batch in (1, 2, 3):
        await store.apply(obs(State.CREATED, 0, batch=batch), NOW + timedelta(hours=batch))
    # A later observation of an old import does not make it new.
    await store.apply(obs(State.IMPORTING, 1, batch=1), NOW + timedelta(hours=9))

    records = await store.records(since=NOW + timedelta(hours=2))

    assert [r.sis_batch_id for r in records] == [3, 2]


async def test_records_filter_on_state_and_since_together(store: SqliteStore) -> None:
    await store.apply(obs(State.IMPORTED, 0, batch=1), NOW)
    await store.apply(obs(State.IMPORTED, 0, batch=2), NOW + timedelta(hours=2))
    await store.apply(obs(State.FAILED, 0, batch=3), NOW + timedelta(hours=2))

    records = await store.records(state=State.IMPORTED, since=NOW + timedelta(hours=1))

    assert [r.sis_batch_id for r in records] == [2]


async def test_full_disk_is_store_unavailable(store: SqliteStore) -> None:
    await store.apply(obs(State.CREATED, 0, batch=1), NOW)
    await fill_disk(store)

    with pytest.raises(StoreUnavailable, match="full"):
        await store.apply(obs(State.CREATED, 0, batch=2, user_agent="x" * 20_000), NOW)


async def test_failed_apply_leaves_no_partial_row_or_journal_entry(store: SqliteStore, db_path: Path) -> None:
    await store.apply(obs(State.CREATED, 0, batch=1), NOW)
    await fill_disk(store)

    # The import row fits in its page; the journal row (a huge message id) needs a new page.
    with pytest.raises(StoreUnavailable):
        await store.apply(obs(State.CREATED, 0, batch=2), NOW, message_id="m" * 20_000)

    assert [r.sis_batch_id for r in await store.records()] == [1]
    assert count_rows(db_path, "journal") == 1


async def test_store_takes_writes_again_once_it_has_room(store: SqliteStore) -> None:
    await fill_disk(store)
    big = obs(State.CREATED, 0, batch=2, user_agent="x" * 20_000)
    with pytest.raises(StoreUnavailable):
        await store.apply(big, NOW)

    await make_room(store)
    applied = await store.apply(big, NOW)

    assert applied.verdict is Verdict.APPLIED
    assert await store.records() == [applied.record]


async def test_last_event_received_is_when_the_latest_event_was_recorded(store: SqliteStore) -> None:
    assert await store.last_event_received() is None
    await store.apply(obs(State.CREATED, 0), NOW)
    later = NOW + timedelta(minutes=5)
    await store.apply(obs(State.IMPORTING, 60), later)
    assert await store.last_event_received() == later


async def test_a_lock_held_by_another_process_fails_fast_instead_of_stalling_the_loop(
    store: SqliteStore, db_path: Path
) -> None:
    other = sqlite3.connect(db_path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # what a `sis-consumer submit` holds for a moment
    try:
        with pytest.raises(StoreUnavailable, match="locked"):
            # Well under the 5 s an opening connection waits: the loop is not held hostage.
            await asyncio.wait_for(store.apply(obs(State.CREATED, 0), NOW), timeout=2)
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert (await store.apply(obs(State.CREATED, 0), NOW)).verdict is Verdict.APPLIED


async def test_closing_checkpoints_the_wal_into_the_database(db_path: Path) -> None:
    async with open_sqlite(db_path) as store:
        await store.apply(obs(State.CREATED, 0), NOW)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM imports").fetchone() == (1,)
