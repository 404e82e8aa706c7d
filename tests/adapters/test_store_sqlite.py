"""`consumer.adapters.store_sqlite` against a real SQLite file."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumer.adapters import store_sqlite
from consumer.adapters.sqlite_schema import MIGRATIONS
from consumer.adapters.sqlite_writes import describe_effects
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.core.tracker import Applied, State, Verdict
from consumer.errors import StoreUnavailable
from tests.support.records import KEEP_JOURNAL, NOW, obs


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state.db"


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(db_path, retention_seconds=KEEP_JOURNAL, owner="daemon") as opened:
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


async def test_a_daemon_closing_its_store_checkpoints_the_wal_into_the_database(db_path: Path) -> None:
    async with open_sqlite(db_path, owner="daemon") as store:
        await store.apply(obs(State.CREATED, 0), NOW)
    wal = db_path.with_name(db_path.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM imports").fetchone() == (1,)


async def test_journal_entries_and_counted_effects_past_retention_are_pruned_at_open(db_path: Path) -> None:
    async with open_sqlite(db_path, retention_seconds=KEEP_JOURNAL, owner="daemon") as store:
        await store.apply(obs(State.IMPORTED, 5, batch=1), NOW)  # 2024: long past a year's retention
    async with open_sqlite(db_path, retention_seconds=KEEP_JOURNAL, owner=None) as command:
        await command.apply(obs(State.IMPORTED, 5, batch=2), NOW)  # left for a daemon to count
    async with open_sqlite(db_path, retention_seconds=365 * 86400, owner="daemon") as store:
        await store.apply(obs(State.CREATED, 0, batch=3), datetime.now(UTC))
        assert count_rows(db_path, "journal") == 1

        assert count_rows(db_path, "outbox") == 1  # the uncounted one stays, whatever its age
        assert [r.sis_batch_id for r in await store.records()] == [3, 2, 1]  # records are never pruned


async def test_a_command_leaves_pruning_to_the_daemon(db_path: Path) -> None:
    async with open_sqlite(db_path, retention_seconds=KEEP_JOURNAL, owner="daemon") as store:
        await store.apply(obs(State.IMPORTED, 5, batch=1), NOW)  # 2024: long past a day's retention

    async with open_sqlite(db_path, retention_seconds=86400) as command:
        await command.apply(obs(State.CREATED, 0, batch=2), datetime.now(UTC))

    assert count_rows(db_path, "journal") == 2  # a daemon would have pruned the 2024 entry on opening


async def test_flush_fsyncs_the_wal_once_for_what_was_committed_since_the_last_flush(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(store_sqlite, "fsync", synced.append)

    await store.flush()  # nothing committed yet
    await store.apply(obs(State.CREATED, 0), NOW)
    await store.apply(obs(State.IMPORTING, 1), NOW)
    await store.flush()
    await store.flush()  # nothing new

    assert [p.name for p in synced] == ["state.db-wal"]


async def test_a_failing_fsync_is_store_unavailable(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def failing(_wal: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(store_sqlite, "fsync", failing)
    await store.apply(obs(State.CREATED, 0), NOW)

    with pytest.raises(StoreUnavailable, match="durable"):
        await store.flush()
