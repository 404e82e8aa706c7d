"""The default store: one SQLite file in WAL mode, used from one dedicated thread.

One thread owns the connection, so transactions never interleave and the event loop never blocks
on disk. `synchronous=NORMAL` in WAL mode survives a process crash (SIGKILL) without an fsync per
commit; a power loss may lose the last commits, which SQS then redelivers.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypeVar

from consumer.core.states import AT_REST, SUCCEEDED, State
from consumer.core.tracker import Applied, Effect, ImportRecord, Observation, Origin, apply
from consumer.errors import StoreUnavailable

T = TypeVar("T")

# Each entry moves the schema from version i to i+1; never edit a released one, append.
MIGRATIONS: Final[tuple[str, ...]] = (
    """
    CREATE TABLE imports (
        account TEXT NOT NULL,
        sis_batch_id INTEGER NOT NULL,
        account_id TEXT,
        state TEXT NOT NULL,
        outcome TEXT,
        origin TEXT NOT NULL,
        at_rest INTEGER NOT NULL,
        stage_times TEXT NOT NULL,
        first_seen_at TEXT NOT NULL,
        last_news_at TEXT NOT NULL,
        finished_at TEXT,
        submitted_at TEXT,
        request_id TEXT,
        developer_key_id TEXT,
        user_agent TEXT,
        PRIMARY KEY (account, sis_batch_id)
    );
    CREATE INDEX imports_at_rest ON imports (at_rest, account);
    CREATE INDEX imports_first_seen ON imports (first_seen_at);
    CREATE TABLE journal (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        recorded_at TEXT NOT NULL,
        account TEXT NOT NULL,
        sis_batch_id INTEGER NOT NULL,
        source TEXT NOT NULL,
        state TEXT NOT NULL,
        observed_at TEXT NOT NULL,
        message_id TEXT,
        verdict TEXT NOT NULL,
        effects TEXT NOT NULL
    );
    CREATE INDEX journal_import ON journal (account, sis_batch_id);
    """,
)

_COLUMNS: Final = (
    "account, sis_batch_id, account_id, state, outcome, origin, at_rest, stage_times, "
    "first_seen_at, last_news_at, finished_at, submitted_at, request_id, developer_key_id, user_agent"
)


def _ts(value: datetime | None) -> str | None:
    # Fixed-width UTC text sorts chronologically; isoformat() alone drops zero microseconds.
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _to_row(r: ImportRecord) -> tuple[Any, ...]:
    stage_times = {state.value: _ts(at) for state, at in sorted(r.stage_times.items())}
    return (
        r.account,
        r.sis_batch_id,
        r.account_id,
        r.state.value,
        None if r.outcome is None else r.outcome.value,
        r.origin.value,
        int(r.state in AT_REST),
        json.dumps(stage_times),
        _ts(r.first_seen_at),
        _ts(r.last_news_at),
        _ts(r.finished_at),
        _ts(r.submitted_at),
        r.request_id,
        r.developer_key_id,
        r.user_agent,
    )


def _from_row(row: sqlite3.Row) -> ImportRecord:
    stage_times = {State(k): datetime.fromisoformat(v) for k, v in json.loads(row["stage_times"]).items()}
    first_seen, last_news = _dt(row["first_seen_at"]), _dt(row["last_news_at"])
    assert first_seen is not None
    assert last_news is not None
    return ImportRecord(
        account=row["account"],
        sis_batch_id=row["sis_batch_id"],
        account_id=row["account_id"],
        state=State(row["state"]),
        outcome=None if row["outcome"] is None else State(row["outcome"]),
        origin=Origin(row["origin"]),
        stage_times=MappingProxyType(stage_times),
        first_seen_at=first_seen,
        last_news_at=last_news,
        submitted_at=_dt(row["submitted_at"]),
        request_id=row["request_id"],
        developer_key_id=row["developer_key_id"],
        user_agent=row["user_agent"],
    )


def describe_effects(effects: Sequence[Effect]) -> str:
    return ",".join(type(e).__name__ for e in effects)


def connect(path: Path) -> sqlite3.Connection:
    """Open the database, apply pending migrations, and return the connection."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA foreign_keys=ON")
    migrate(conn)
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; returns it. Refuses a newer schema than we know."""
    version: int = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise StoreUnavailable(
            f"the database schema is version {version}, newer than this release knows "
            f"({len(MIGRATIONS)}): upgrade sis-consumer"
        )
    for target, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in filter(str.strip, script.split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {target}")
            conn.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back on some errors (SQLITE_FULL, IOERR...): a second
            # ROLLBACK would fail and hide the real cause.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


class SqliteStore:
    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor

    async def _call(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, fn)
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error, read-only...
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        return await self._call(lambda: self._apply(obs, now, message_id))

    def _apply(self, obs: Observation, now: datetime, message_id: str | None) -> Applied:
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM imports WHERE account = ? AND sis_batch_id = ?",
                (obs.account, obs.sis_batch_id),
            ).fetchone()
            result = apply(None if row is None else _from_row(row), obs, now)
            if result.record is not None and (row is None or result.changed):
                placeholders = ", ".join("?" * len(_COLUMNS.split(",")))
                conn.execute(
                    f"INSERT OR REPLACE INTO imports ({_COLUMNS}) VALUES ({placeholders})",
                    _to_row(result.record),
                )
            conn.execute(
                "INSERT INTO journal (recorded_at, account, sis_batch_id, source, state, observed_at,"
                " message_id, verdict, effects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _ts(now),
                    obs.account,
                    obs.sis_batch_id,
                    obs.source,
                    obs.state.value,
                    _ts(obs.at),
                    message_id,
                    result.verdict.value,
                    describe_effects(result.effects),
                ),
            )
            conn.execute("COMMIT")
        except BaseException:
            # SQLite has already rolled back on some errors (SQLITE_FULL, IOERR...): a second
            # ROLLBACK would fail and hide the real cause.
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        return result

    async def records(
        self, *, state: State | None = None, since: datetime | None = None
    ) -> Sequence[ImportRecord]:
        query = f"SELECT {_COLUMNS} FROM imports WHERE 1=1"
        params: list[Any] = []
        if state is not None:
            query += " AND state = ?"
            params.append(state.value)
        if since is not None:
            query += " AND first_seen_at >= ?"
            params.append(_ts(since))
        query += " ORDER BY first_seen_at DESC, sis_batch_id DESC"
        return await self._call(lambda: [_from_row(r) for r in self._conn.execute(query, params).fetchall()])

    async def unfinished(self) -> Sequence[ImportRecord]:
        query = f"SELECT {_COLUMNS} FROM imports WHERE at_rest = 0"
        return await self._call(lambda: [_from_row(r) for r in self._conn.execute(query).fetchall()])

    async def last_successes(self) -> dict[str, datetime]:
        marks = ", ".join("?" * len(SUCCEEDED))
        query = f"SELECT account, MAX(finished_at) FROM imports WHERE outcome IN ({marks}) GROUP BY account"
        rows = await self._call(lambda: self._conn.execute(query, [s.value for s in SUCCEEDED]).fetchall())
        return {account: datetime.fromisoformat(at) for account, at in rows if at is not None}

    async def ping(self) -> None:
        await self._call(lambda: self._conn.execute("SELECT 1").fetchone())


def open_sqlite(path: Path) -> AbstractAsyncContextManager[SqliteStore]:
    return _open(path)


@asynccontextmanager
async def _open(path: Path) -> AsyncIterator[SqliteStore]:
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite")
    loop = asyncio.get_running_loop()
    try:
        conn = await loop.run_in_executor(executor, lambda: connect(path))
    except sqlite3.Error as exc:
        executor.shutdown(wait=False)
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    try:
        yield SqliteStore(conn, executor)
    finally:
        await loop.run_in_executor(executor, conn.close)
        executor.shutdown(wait=True)
