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
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from consumer.adapters.sqlite_schema import (
    COLUMNS,
    connect,
    from_row,
    submission_from_row,
    to_row,
    transaction,
    ts,
)
from consumer.core.correlate import creator, join_answer, join_event, wants_submission
from consumer.core.states import SUCCEEDED, State
from consumer.core.submission import Submission, SubmissionStatus
from consumer.core.tracker import (
    Applied,
    Effect,
    ImportRecord,
    Observation,
    apply,
)
from consumer.errors import StoreUnavailable

T = TypeVar("T")

BUSY_SECONDS = 0.1
"""Longest wait on the event loop for another process's write lock."""
CHECKPOINT_SECONDS = 5.0


def _write(conn: sqlite3.Connection, record: ImportRecord) -> None:
    placeholders = ", ".join("?" * len(COLUMNS.split(",")))
    conn.execute(
        f"INSERT OR REPLACE INTO imports ({COLUMNS}) VALUES ({placeholders})",
        to_row(record),
    )


def _read(conn: sqlite3.Connection, account: str, sis_batch_id: int) -> ImportRecord | None:
    row = conn.execute(
        f"SELECT {COLUMNS} FROM imports WHERE account = ? AND sis_batch_id = ?",
        (account, sis_batch_id),
    ).fetchone()
    return None if row is None else from_row(row)


def _join_submission(
    conn: sqlite3.Connection, old: ImportRecord | None, result: Applied, now: datetime
) -> Applied:
    """An event of an import we submitted: mark it ours (the rule is `core.correlate`'s).

    The event may come before the POST's answer is recorded; then `answer_submission` joins.
    """
    record = result.record
    if not wants_submission(record):
        return result
    rows = conn.execute(
        "SELECT * FROM submissions WHERE (account = ? AND sis_batch_id = ?) OR request_id = ?",
        (record.account, record.sis_batch_id, record.request_id),
    ).fetchall()
    submission = creator((submission_from_row(r) for r in rows), record)
    if submission is not None and submission.id is not None and submission.sis_batch_id is None:
        _link(conn, submission.id, record)  # a 400 that still left a batch behind (an orphan)
    return join_event(old, result, submission, now)


def _join_by_request(
    conn: sqlite3.Connection, submission_id: int, request_id: str, now: datetime
) -> Applied | None:
    """The POST's answer came after the event of the batch it created (a 400 that left an orphan):
    join that import, found by the POST's request id, to the submission."""
    row = conn.execute(
        f"SELECT {COLUMNS} FROM imports WHERE request_id = ? ORDER BY first_seen_at LIMIT 1", (request_id,)
    ).fetchone()
    if row is None:
        return None
    old = from_row(row)
    _link(conn, submission_id, old)
    result = join_answer(old, None, _submitted_at(conn, submission_id), now)
    if result.changed:
        _write(conn, result.record)
    return result


def _link(conn: sqlite3.Connection, submission_id: int, record: ImportRecord) -> None:
    """Write down which import a submission created, once an event or the answer says."""
    conn.execute(
        "UPDATE submissions SET sis_batch_id = ?, account = ? WHERE id = ?",
        (record.sis_batch_id, record.account, submission_id),
    )


def _submitted_at(conn: sqlite3.Connection, submission_id: int) -> datetime:
    row = conn.execute("SELECT submitted_at FROM submissions WHERE id = ?", (submission_id,)).fetchone()
    return datetime.fromisoformat(row["submitted_at"])


def describe_effects(effects: Sequence[Effect]) -> str:
    return ",".join(type(e).__name__ for e in effects)


class SqliteStore:
    def __init__(self, conn: sqlite3.Connection, executor: ThreadPoolExecutor) -> None:
        self._conn = conn
        self._executor = executor

    async def _call(self, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except sqlite3.OperationalError as exc:  # locked, disk full, I/O error, read-only...
            raise StoreUnavailable(f"sqlite: {exc}") from exc

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        return await self._call(lambda: self._apply(obs, now, message_id))

    def _apply(self, obs: Observation, now: datetime, message_id: str | None) -> Applied:
        conn = self._conn
        with transaction(conn):
            old = _read(conn, obs.account, obs.sis_batch_id)
            result = _join_submission(conn, old, apply(old, obs, now), now)
            if old is None or result.changed:
                _write(conn, result.record)
            self._journal(conn, obs, now, message_id, result)
        return result

    async def record(self, account: str, sis_batch_id: int) -> ImportRecord | None:
        return await self._call(lambda: _read(self._conn, account, sis_batch_id))

    async def record_submission(self, submission: Submission) -> int:
        """Write down what we are about to POST; returns the submission's id."""

        def insert() -> int:
            cursor = self._conn.execute(
                "INSERT INTO submissions (canvas_url, account_ref, account, account_id, file_name, size,"
                " sha256, options, submitted_at, status) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    submission.canvas_url,
                    submission.account_ref,
                    submission.account,
                    submission.account_id,
                    submission.file_name,
                    submission.size,
                    submission.sha256,
                    json.dumps(dict(submission.options), sort_keys=True),
                    ts(submission.submitted_at),
                    submission.status.value,
                ),
            )
            assert cursor.lastrowid is not None
            return cursor.lastrowid

        return await self._call(insert)

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
            lambda: self._answer(submission_id, status, now, http_status, error, request_id, observation)
        )

    def _answer(
        self,
        submission_id: int,
        status: SubmissionStatus,
        now: datetime,
        http_status: int | None,
        error: str | None,
        request_id: str | None,
        obs: Observation | None,
    ) -> Applied | None:
        conn = self._conn
        with transaction(conn):
            conn.execute(
                "UPDATE submissions SET status = ?, http_status = ?, error = ?, request_id = ?,"
                " answered_at = ?, sis_batch_id = COALESCE(?, sis_batch_id) WHERE id = ?",
                (
                    status.value,
                    http_status,
                    error,
                    request_id,
                    ts(now),
                    None if obs is None else obs.sis_batch_id,
                    submission_id,
                ),
            )
            result = None
            if obs is not None:
                old = _read(conn, obs.account, obs.sis_batch_id)
                result = join_answer(old, obs, _submitted_at(conn, submission_id), now)
                _write(conn, result.record)
                self._journal(conn, obs, now, f"submission:{submission_id}", result)
            elif request_id is not None and status is SubmissionStatus.REJECTED:
                result = _join_by_request(conn, submission_id, request_id, now)
        return result

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

    @staticmethod
    def _journal(
        conn: sqlite3.Connection, obs: Observation, now: datetime, message_id: str | None, result: Applied
    ) -> None:
        conn.execute(
            "INSERT INTO journal (recorded_at, account, sis_batch_id, source, state, observed_at,"
            " message_id, verdict, effects) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                ts(now),
                obs.account,
                obs.sis_batch_id,
                obs.source,
                obs.state.value,
                ts(obs.at),
                message_id,
                result.verdict.value,
                describe_effects(result.effects),
            ),
        )

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

    async def last_event_received(self) -> datetime | None:
        """When the latest Live Event was recorded: seeds the last-event gauge after a restart."""
        row = await self._call(
            lambda: self._conn.execute(
                "SELECT MAX(recorded_at) FROM journal WHERE source = 'event'"
            ).fetchone()
        )
        return None if row[0] is None else datetime.fromisoformat(row[0])

    async def ping(self) -> None:
        await self._call(lambda: self._conn.execute("SELECT 1").fetchone())


def open_sqlite(path: Path) -> AbstractAsyncContextManager[SqliteStore]:
    return _open(path)


@asynccontextmanager
async def _open(path: Path) -> AsyncIterator[SqliteStore]:
    try:
        conn = connect(path, busy_seconds=BUSY_SECONDS, autocheckpoint=False)
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot open {path}: {exc}") from exc
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-checkpoint")
    checkpoints = asyncio.create_task(_checkpoint_every(path, executor, CHECKPOINT_SECONDS))
    try:
        yield SqliteStore(conn, executor)
    finally:
        checkpoints.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await checkpoints
        conn.close()
        await asyncio.get_running_loop().run_in_executor(executor, lambda: _checkpoint(path, "TRUNCATE"))
        executor.shutdown(wait=True)


def _checkpoint(path: Path, mode: str = "PASSIVE") -> None:
    """Copy the WAL back into the database (this is where SQLite fsyncs), on its own connection."""
    conn = sqlite3.connect(path, timeout=BUSY_SECONDS)
    try:
        conn.execute(f"PRAGMA wal_checkpoint({mode})")
    except sqlite3.OperationalError:
        pass  # busy or locked: the next round does it
    finally:
        conn.close()


async def _checkpoint_every(path: Path, executor: ThreadPoolExecutor, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(seconds)
        await loop.run_in_executor(executor, lambda: _checkpoint(path))
