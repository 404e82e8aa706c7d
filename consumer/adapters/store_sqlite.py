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

from consumer.adapters.sqlite_schema import (
    BUSY_SECONDS,
    COLUMNS,
    connect,
    from_row,
    source_json,
    submission_from_row,
    to_row,
    transaction,
    ts,
)
from consumer.adapters.sqlite_upkeep import checkpoint, fsync, maintain, prune_past
from consumer.core.correlate import creator, join_answer, join_event, wants_submission
from consumer.core.learned import HISTORY_SIZE, AccountHistory, Run, newest_first, run_of
from consumer.core.outbox import Claimed, decode_effects, encode_effects
from consumer.core.states import SUCCEEDED, State
from consumer.core.stuck import StuckReason, StuckVerdict, verdicts_changed
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import (
    Applied,
    Effect,
    ImportRecord,
    Observation,
    apply,
    worth_journaling,
)
from consumer.errors import AlreadySubmitted, StoreUnavailable
from consumer.ports import Export, JournalEntry, LeaseToken, SavedResult

T = TypeVar("T")


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


def _claim(conn: sqlite3.Connection, source: SourceObject) -> int | None:
    """The submission holding the claim on this object version, if any."""
    row = conn.execute(
        "SELECT submission_id FROM object_claims WHERE bucket = ? AND key = ? AND version = ?",
        (source.bucket, source.key, source.version),
    ).fetchone()
    return None if row is None else int(row[0])


def _stuck(conn: sqlite3.Connection) -> dict[tuple[str, int], StuckVerdict]:
    rows = conn.execute("SELECT account, sis_batch_id, reason, since FROM stuck").fetchall()
    return {(r[0], r[1]): StuckVerdict(StuckReason(r[2]), datetime.fromisoformat(r[3])) for r in rows}


def describe_effects(effects: Sequence[Effect]) -> str:
    return ",".join(type(e).__name__ for e in effects)


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
            if worth_journaling(obs, result):
                self._journal(conn, obs, now, message_id, result)
            self._outbox(conn, result, now)
        return result

    async def record(self, account: str, sis_batch_id: int) -> ImportRecord | None:
        return await self._call(lambda: _read(self._conn, account, sis_batch_id))

    async def record_submission(self, submission: Submission) -> int:
        """Write down what we are about to POST; returns the submission's id. A drop-folder
        object's submission claims its version in the same transaction, or raises
        `AlreadySubmitted`."""

        def insert() -> int:
            conn = self._conn
            source = submission.source
            with transaction(conn):
                if source is not None:
                    claimed = _claim(conn, source)
                    if claimed is not None:
                        raise AlreadySubmitted(f"{source.key} ({source.version}) was submitted", claimed)
                cursor = conn.execute(
                    "INSERT INTO submissions (canvas_url, account_ref, account, account_id, file_name,"
                    " size, sha256, options, submitted_at, status, source)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                        source_json(source),
                    ),
                )
                submission_id = cursor.lastrowid
                assert submission_id is not None
                if source is not None:
                    conn.execute(
                        "INSERT INTO object_claims (bucket, key, version, submission_id) VALUES (?, ?, ?, ?)",
                        (source.bucket, source.key, source.version, submission_id),
                    )
            return submission_id

        return await self._call(insert)

    async def release_object(self, source: SourceObject) -> None:
        def release() -> None:
            conn = self._conn
            with transaction(conn):
                claimed = _claim(conn, source)
                if claimed is None:
                    return
                conn.execute(
                    "DELETE FROM object_claims WHERE bucket = ? AND key = ? AND version = ?",
                    (source.bucket, source.key, source.version),
                )
                conn.execute("UPDATE submissions SET reported = 'retried' WHERE id = ?", (claimed,))

        await self._call(release)

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
            if result is not None:
                self._outbox(conn, result, now)
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
            " message_id, verdict, effects, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                obs.note,
            ),
        )

    def _outbox(self, conn: sqlite3.Connection, result: Applied, now: datetime) -> None:
        """Write the effects down beside the record: claimed by this daemon, or left for one."""
        if not result.effects:
            return
        conn.execute(
            "INSERT INTO outbox (account, sis_batch_id, recorded_at, effects, claimed_by, claimed_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (
                result.record.account,
                result.record.sis_batch_id,
                ts(now),
                encode_effects(result.effects),
                self._owner,
                None if self._owner is None else ts(now),
            ),
        )

    async def claim_effects(self, lease: LeaseToken | None = None, limit: int = 100) -> list[Claimed]:
        """One process uses a SQLite store, so it needs no lease to claim."""
        owner = self._owner
        if owner is None:
            raise StoreUnavailable("only a daemon claims effects: this store was opened without an owner")

        def claim() -> list[Claimed]:
            conn = self._conn
            with transaction(conn):
                rows = conn.execute(
                    "SELECT id, account, sis_batch_id, effects FROM outbox"
                    " WHERE claimed_by IS NULL ORDER BY id LIMIT ?",
                    (limit,),
                ).fetchall()
                conn.executemany(
                    "UPDATE outbox SET claimed_by = ?, claimed_at = ? WHERE id = ?",
                    [(owner, ts(datetime.now(UTC)), r["id"]) for r in rows],
                )
                effects: dict[tuple[str, int], list[Effect]] = {}
                for r in rows:
                    effects.setdefault((r["account"], r["sis_batch_id"]), []).extend(
                        decode_effects(r["effects"])
                    )
                claimed = []
                for (account, batch), found in effects.items():
                    record = _read(conn, account, batch)
                    if record is not None:
                        claimed.append(Claimed(record, tuple(found)))
            return claimed

        return await self._call(claim)

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
        def save() -> None:
            conn = self._conn
            with transaction(conn):
                put, gone = verdicts_changed(_stuck(conn), verdicts, now)
                conn.executemany(
                    "DELETE FROM stuck WHERE account = ? AND sis_batch_id = ?", [list(key) for key in gone]
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO stuck (account, sis_batch_id, reason, since) VALUES (?, ?, ?, ?)",
                    [(a, b, v.reason.value, ts(v.since)) for (a, b), v in put.items()],
                )

        await self._call(save)

    async def stuck(self) -> dict[tuple[str, int], StuckVerdict]:
        return await self._call(lambda: _stuck(self._conn))

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
