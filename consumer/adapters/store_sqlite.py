"""The default store: one SQLite file in WAL mode.

Transactions run on the event loop itself. With WAL and `synchronous=NORMAL` a commit appends to
the WAL in the page cache and never fsyncs, so a write transaction takes tens of microseconds;
handing it to a thread cost more (~400 µs per SIS event, mostly waiting to get the GIL back; see
`make bench`). What can take long is kept off the loop: the checkpoint, which fsyncs, runs on its
own connection in a worker thread (`wal_autocheckpoint` is off), and a lock held by another
process (a `sis-consumer submit`) is waited on for at most `BUSY_SECONDS`, then the write fails
as `StoreUnavailable` and its message is retried later.

WAL with `synchronous=NORMAL` survives a process crash (SIGKILL); a power loss may lose the last
commits, which SQS then redelivers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from consumer.adapters import sqlite_writes as sw
from consumer.adapters.sqlite_schema import BUSY_SECONDS, connect
from consumer.adapters.sqlite_upkeep import checkpoint, fsync, maintain, prune_past
from consumer.adapters.sqlite_writes import COLUMNS, from_row, submission_from_row, ts
from consumer.core.learned import HISTORY_SIZE, AccountHistory, Run, newest_first, run_of
from consumer.core.stuck import StuckReason, StuckVerdict
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import (
    SUCCEEDED,
    Applied,
    Claimed,
    ImportRecord,
    Observation,
    State,
)
from consumer.errors import StoreUnavailable
from consumer.ports import Export, JournalEntry, LeaseToken, SavedResult

T = TypeVar("T")


class SqliteStore:
    def __init__(
        self, conn: sqlite3.Connection, executor: ThreadPoolExecutor, owner: str | None = None
    ) -> None:
        self._conn = conn
        self._executor = executor
        self._owner = owner
        """Who counts the effects this store commits: a daemon, or None (a command: a daemon claims them)."""
        self._wal = Path(conn.execute("PRAGMA database_list").fetchone()[2] + "-wal")
        self._synced_changes = 0
        self._syncing = asyncio.Lock()

    def leases(self) -> None:
        """One process on one host uses a SQLite file: it leads without a lease."""
        return

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error, read-only...
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        return await self._call(lambda: sw.observe(self._conn, self._owner, obs, now, message_id))

    async def record(self, account: str, sis_batch_id: int) -> ImportRecord | None:
        return await self._call(lambda: sw.read(self._conn, account, sis_batch_id))

    async def record_submission(self, submission: Submission) -> int:
        """Write down what we are about to POST; returns the submission's id. A drop-folder
        object's submission claims its version in the same transaction, or raises
        `AlreadySubmitted`."""
        return await self._call(lambda: sw.insert_submission(self._conn, submission))

    async def release_object(self, source: SourceObject) -> None:
        await self._call(lambda: sw.release_object(self._conn, source))

    async def unreported(self, limit: int = 50) -> list[Submission]:
        rows = await self._call(
            lambda: self._conn.execute(
                "SELECT * FROM submissions WHERE source IS NOT NULL AND reported IS NULL ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        )
        return [submission_from_row(r) for r in rows]

    async def mark_reported(self, submission_id: int, status: str) -> None:
        await self._call(
            lambda: self._conn.execute(
                "UPDATE submissions SET reported = ? WHERE id = ?", (status, submission_id)
            )
        )

    async def answer_submission(
        self,
        submission_id: int,
        *,
        status: SubmissionStatus,
        now: datetime,
        http_status: int | None = None,
        error: str | None = None,
        request_id: str | None = None,
        observation: Observation | None = None,
    ) -> Applied | None:
        """Record the POST's answer; with the import it created (`observation`, from the answer),
        join it to the import's record in the same transaction."""
        return await self._call(
            lambda: sw.answer(
                self._conn,
                self._owner,
                submission_id,
                status,
                now,
                http_status,
                error,
                request_id,
                observation,
            )
        )

    async def submission(self, submission_id: int) -> Submission | None:
        def read() -> Submission | None:
            row = self._conn.execute("SELECT * FROM submissions WHERE id = ?", (submission_id,)).fetchone()
            return None if row is None else submission_from_row(row)

        return await self._call(read)

    async def submissions(self) -> dict[tuple[str, int], Submission]:
        """Submissions that created an import, by that import's key."""

        def read() -> dict[tuple[str, int], Submission]:
            rows = self._conn.execute(
                "SELECT * FROM submissions WHERE account IS NOT NULL AND sis_batch_id IS NOT NULL ORDER BY id"
            ).fetchall()
            return {(r["account"], r["sis_batch_id"]): submission_from_row(r) for r in rows}

        return await self._call(read)

    async def cached_account(self, canvas_url: str, account_ref: str) -> tuple[str, str] | None:
        """(uuid, local id) of an account learned before, for this Canvas."""
        row = await self._call(
            lambda: self._conn.execute(
                "SELECT account, account_id FROM canvas_accounts WHERE canvas_url = ? AND account_ref = ?",
                (canvas_url, account_ref),
            ).fetchone()
        )
        return None if row is None else (row["account"], row["account_id"])

    async def cache_account(self, canvas_url: str, account_ref: str, account: str, account_id: str) -> None:
        await self._call(
            lambda: self._conn.execute(
                "INSERT OR REPLACE INTO canvas_accounts (canvas_url, account_ref, account, account_id)"
                " VALUES (?, ?, ?, ?)",
                (canvas_url, account_ref, account, account_id),
            )
        )

    async def claim_effects(self, lease: LeaseToken | None = None, limit: int = 100) -> list[Claimed]:
        """One process uses a SQLite store, so it needs no lease to claim."""
        owner = self._owner
        if owner is None:
            raise StoreUnavailable("only a daemon claims effects: this store was opened without an owner")

        return await self._call(lambda: sw.claim_outbox(self._conn, owner, datetime.now(UTC), limit))

    async def results_due(
        self, account: str, now: datetime, limit: int = 20
    ) -> list[tuple[ImportRecord, bool]]:
        """Finished imports of `account` whose SisImport was never fetched, or is due its second
        look; with True for a second look."""
        columns = ", ".join("i." + c.strip() for c in COLUMNS.split(","))
        query = (
            f"SELECT {columns}, r.account IS NOT NULL AS fetched FROM imports i"
            " LEFT JOIN results r ON r.account = i.account AND r.sis_batch_id = i.sis_batch_id"
            " WHERE i.account = ? AND i.outcome IS NOT NULL"
            " AND (r.account IS NULL OR (r.look_again_at IS NOT NULL AND r.look_again_at <= ?))"
            " ORDER BY i.finished_at LIMIT ?"
        )
        rows = await self._call(lambda: self._conn.execute(query, (account, ts(now), limit)).fetchall())
        return [(from_row(r), bool(r["fetched"])) for r in rows]

    async def save_result(
        self,
        account: str,
        sis_batch_id: int,
        summary: dict[str, Any],
        now: datetime,
        look_again_at: datetime | None,
    ) -> bool:
        """Store a fetched result; True the first time (when its messages are still to be counted)."""

        def save() -> bool:
            first = (
                self._conn.execute(
                    "SELECT 1 FROM results WHERE account = ? AND sis_batch_id = ?", (account, sis_batch_id)
                ).fetchone()
                is None
            )
            self._conn.execute(
                "INSERT OR REPLACE INTO results (account, sis_batch_id, fetched_at, summary, look_again_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (account, sis_batch_id, ts(now), json.dumps(summary), ts(look_again_at)),
            )
            return first

        return await self._call(save)

    async def results(self) -> dict[tuple[str, int], dict[str, Any]]:
        rows = await self._call(
            lambda: self._conn.execute("SELECT account, sis_batch_id, summary FROM results").fetchall()
        )
        return {(r["account"], r["sis_batch_id"]): json.loads(r["summary"]) for r in rows}

    async def save_stuck(self, verdicts: Mapping[tuple[str, int], StuckReason], now: datetime) -> None:
        await self._call(lambda: sw.save_stuck(self._conn, verdicts, now))

    async def stuck(self) -> dict[tuple[str, int], StuckVerdict]:
        return await self._call(lambda: sw.stuck(self._conn))

    async def records(
        self, *, state: State | None = None, since: datetime | None = None
    ) -> Sequence[ImportRecord]:
        query = f"SELECT {COLUMNS} FROM imports WHERE 1=1"
        params: list[Any] = []
        if state is not None:
            query += " AND state = ?"
            params.append(state.value)
        if since is not None:
            query += " AND first_seen_at >= ?"
            params.append(ts(since))
        query += " ORDER BY first_seen_at DESC, sis_batch_id DESC"
        return await self._call(lambda: [from_row(r) for r in self._conn.execute(query, params).fetchall()])

    async def unfinished(self) -> Sequence[ImportRecord]:
        query = f"SELECT {COLUMNS} FROM imports WHERE at_rest = 0"
        return await self._call(lambda: [from_row(r) for r in self._conn.execute(query).fetchall()])

    async def last_successes(self) -> dict[str, datetime]:
        marks = ", ".join("?" * len(SUCCEEDED))
        query = f"SELECT account, MAX(finished_at) FROM imports WHERE outcome IN ({marks}) GROUP BY account"
        rows = await self._call(lambda: self._conn.execute(query, [s.value for s in SUCCEEDED]).fetchall())
        return {account: datetime.fromisoformat(at) for account, at in rows if at is not None}

    async def histories(self) -> dict[str, AccountHistory]:
        # Derived from the imports themselves, the latest HISTORY_SIZE successes per account.
        marks = ", ".join("?" * len(SUCCEEDED))
        query = (
            f"SELECT {COLUMNS} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY account"
            " ORDER BY finished_at DESC, sis_batch_id DESC) AS position"
            f" FROM imports WHERE outcome IN ({marks})) WHERE position <= ?"
        )
        params = [*(s.value for s in SUCCEEDED), HISTORY_SIZE]
        rows = await self._call(lambda: self._conn.execute(query, params).fetchall())
        runs: dict[str, list[Run]] = {}
        for row in rows:
            record = from_row(row)
            run = run_of(record)
            if run is not None:
                runs.setdefault(record.account, []).append(run)
        return {
            account: AccountHistory(ordered[0].finished_at, ordered)
            for account, found in runs.items()
            if (ordered := newest_first(found))
        }

    async def last_event_received(self) -> datetime | None:
        row = await self._call(
            lambda: self._conn.execute("SELECT value FROM meta WHERE key = 'last_event'").fetchone()
        )
        return None if row is None else datetime.fromisoformat(row[0])

    async def note_last_event(self, at: datetime) -> None:
        await self._call(
            lambda: self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('last_event', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE excluded.value > meta.value",
                (ts(at),),
            )
        )

    async def expected_since(self, accounts: Sequence[str], now: datetime) -> dict[str, datetime]:
        keys = [f"expected_since:{account}" for account in accounts]

        def note_and_read() -> dict[str, datetime]:
            self._conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                [(key, ts(now)) for key in keys],
            )
            marks = ", ".join("?" * len(keys))
            rows = self._conn.execute(f"SELECT key, value FROM meta WHERE key IN ({marks})", keys)
            return {key.split(":", 1)[1]: datetime.fromisoformat(at) for key, at in rows.fetchall()}

        return await self._call(note_and_read)

    async def export(self) -> Export:
        """Everything `store copy` carries to another store: records, submissions, results."""

        def read() -> Export:
            conn = self._conn
            records = [
                from_row(r) for r in conn.execute(f"SELECT {COLUMNS} FROM imports ORDER BY first_seen_at")
            ]
            submissions = [
                submission_from_row(r) for r in conn.execute("SELECT * FROM submissions ORDER BY id")
            ]
            results = [
                SavedResult(
                    r["account"],
                    r["sis_batch_id"],
                    json.loads(r["summary"]),
                    datetime.fromisoformat(r["fetched_at"]),
                    None if r["look_again_at"] is None else datetime.fromisoformat(r["look_again_at"]),
                )
                for r in conn.execute("SELECT * FROM results")
            ]
            return Export(records, submissions, results)

        return await self._call(read)

    async def flush(self) -> None:
        """fsync the WAL when something was committed since the last flush, off the event loop.

        Commits themselves do not fsync (`synchronous=NORMAL`): a batch of messages pays for one
        fsync before its deletes, instead of each SIS event paying for one on the event loop.
        """
        async with self._syncing:  # a flush under way may not cover this caller's commits yet
            changes = self._conn.total_changes
            if changes == self._synced_changes:
                return
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, fsync, self._wal)
            except OSError as exc:
                raise StoreUnavailable(f"sqlite: cannot make the commits durable: {exc}") from exc
            self._synced_changes = changes

    async def ping(self) -> None:
        await self._call(lambda: self._conn.execute("SELECT 1").fetchone())

    async def journal(self, account: str, sis_batch_id: int) -> list[JournalEntry]:
        query = (
            "SELECT recorded_at, source, state, observed_at, verdict, message_id, note FROM journal"
            " WHERE account = ? AND sis_batch_id = ? ORDER BY seq"
        )
        rows = await self._call(lambda: self._conn.execute(query, (account, sis_batch_id)).fetchall())
        return [
            JournalEntry(
                recorded_at=datetime.fromisoformat(r["recorded_at"]),
                source=r["source"],
                state=State(r["state"]),
                observed_at=datetime.fromisoformat(r["observed_at"]),
                verdict=r["verdict"],
                message_id=r["message_id"],
                note=r["note"],
            )
            for r in rows
        ]


def open_sqlite(
    path: Path, *, owner: str | None = None, retention_seconds: float = 90 * 86400
) -> AbstractAsyncContextManager[SqliteStore]:
    """Open (and migrate) the store. `owner`: the daemon that counts what this store commits;
    journal entries and counted effects older than `retention_seconds` are pruned."""
    return _open(path, owner, retention_seconds)


@asynccontextmanager
async def _open(path: Path, owner: str | None, retention_seconds: float) -> AsyncIterator[SqliteStore]:
    # The daemon keeps the file: it checkpoints off the event loop and prunes. A command (no owner)
    # leaves both to it, so it holds the write lock no longer than its own few writes.
    daemon = owner is not None
    try:
        conn = connect(path, busy_seconds=BUSY_SECONDS, autocheckpoint=not daemon)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-maintenance")
    upkeep = None
    if daemon:
        await prune_past(path, executor, retention_seconds)
        upkeep = asyncio.create_task(maintain(path, executor, retention_seconds))
    try:
        yield SqliteStore(conn, executor, owner)
    finally:
        if upkeep is not None:
            upkeep.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await upkeep
        conn.close()
        if daemon:
            await asyncio.get_running_loop().run_in_executor(executor, checkpoint, path, "TRUNCATE")
        executor.shutdown(wait=True)
