"""The SQLite schema: versioned migrations, and how records map to rows and back."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from consumer.core.states import AT_REST, State
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import ImportRecord, Origin
from consumer.errors import StoreUnavailable

BUSY_SECONDS: Final = 0.1
"""Longest wait on the event loop for another process's write lock."""

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
    """
    ALTER TABLE imports ADD COLUMN last_event_at TEXT;
    """,
    """
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        canvas_url TEXT NOT NULL,
        account_ref TEXT NOT NULL,
        account TEXT,
        account_id TEXT,
        file_name TEXT NOT NULL,
        size INTEGER NOT NULL,
        sha256 TEXT NOT NULL,
        options TEXT NOT NULL,
        submitted_at TEXT NOT NULL,
        status TEXT NOT NULL,
        http_status INTEGER,
        error TEXT,
        sis_batch_id INTEGER,
        request_id TEXT,
        answered_at TEXT
    );
    CREATE INDEX submissions_import ON submissions (account, sis_batch_id);
    CREATE INDEX submissions_request ON submissions (request_id);
    CREATE TABLE canvas_accounts (
        canvas_url TEXT NOT NULL,
        account_ref TEXT NOT NULL,
        account TEXT NOT NULL,
        account_id TEXT NOT NULL,
        PRIMARY KEY (canvas_url, account_ref)
    );
    """,
    """
    CREATE TABLE results (
        account TEXT NOT NULL,
        sis_batch_id INTEGER NOT NULL,
        fetched_at TEXT NOT NULL,
        summary TEXT NOT NULL,
        look_again_at TEXT,
        PRIMARY KEY (account, sis_batch_id)
    );
    """,
    """
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        account TEXT NOT NULL,
        sis_batch_id INTEGER NOT NULL,
        recorded_at TEXT NOT NULL,
        effects TEXT NOT NULL,
        claimed_by TEXT,
        claimed_at TEXT
    );
    CREATE INDEX outbox_unclaimed ON outbox (id) WHERE claimed_by IS NULL;
    CREATE INDEX outbox_import ON outbox (account, sis_batch_id);
    CREATE INDEX journal_recorded ON journal (recorded_at);
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    INSERT INTO meta (key, value)
        SELECT 'last_event', MAX(recorded_at) FROM journal
        WHERE source = 'event' HAVING MAX(recorded_at) IS NOT NULL;
    """,
    """
    ALTER TABLE submissions ADD COLUMN source TEXT;
    ALTER TABLE submissions ADD COLUMN reported TEXT;
    CREATE INDEX submissions_unreported ON submissions (id) WHERE source IS NOT NULL AND reported IS NULL;
    CREATE TABLE object_claims (
        bucket TEXT NOT NULL,
        key TEXT NOT NULL,
        version TEXT NOT NULL,
        submission_id INTEGER NOT NULL,
        PRIMARY KEY (bucket, key, version)
    );
    """,
    """
    ALTER TABLE journal ADD COLUMN note TEXT;
    """,
    """
    CREATE TABLE stuck (
        account TEXT NOT NULL,
        sis_batch_id INTEGER NOT NULL,
        reason TEXT NOT NULL,
        since TEXT NOT NULL,
        PRIMARY KEY (account, sis_batch_id)
    );
    """,
)

COLUMNS: Final = (
    "account, sis_batch_id, account_id, state, outcome, origin, at_rest, stage_times, "
    "first_seen_at, last_news_at, finished_at, submitted_at, request_id, developer_key_id, user_agent, "
    "last_event_at"
)


def ts(value: datetime | None) -> str | None:
    # Fixed-width UTC text sorts chronologically; isoformat() alone drops zero microseconds.
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def to_row(r: ImportRecord) -> tuple[Any, ...]:
    stage_times = {state.value: ts(at) for state, at in sorted(r.stage_times.items())}
    return (
        r.account,
        r.sis_batch_id,
        r.account_id,
        r.state.value,
        None if r.outcome is None else r.outcome.value,
        r.origin.value,
        int(r.state in AT_REST),
        json.dumps(stage_times),
        ts(r.first_seen_at),
        ts(r.last_news_at),
        ts(r.finished_at),
        ts(r.submitted_at),
        r.request_id,
        r.developer_key_id,
        r.user_agent,
        ts(r.last_event_at),
    )


def from_row(row: sqlite3.Row) -> ImportRecord:
    stage_times = {State(k): datetime.fromisoformat(v) for k, v in json.loads(row["stage_times"]).items()}
    first_seen, last_news = dt(row["first_seen_at"]), dt(row["last_news_at"])
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
        submitted_at=dt(row["submitted_at"]),
        request_id=row["request_id"],
        developer_key_id=row["developer_key_id"],
        user_agent=row["user_agent"],
        last_event_at=dt(row["last_event_at"]),
    )


def submission_from_row(row: sqlite3.Row) -> Submission:
    submitted_at = datetime.fromisoformat(row["submitted_at"])
    return Submission(
        id=row["id"],
        canvas_url=row["canvas_url"],
        account_ref=row["account_ref"],
        account=row["account"],
        account_id=row["account_id"],
        file_name=row["file_name"],
        size=row["size"],
        sha256=row["sha256"],
        options=MappingProxyType(json.loads(row["options"])),
        submitted_at=submitted_at,
        status=SubmissionStatus(row["status"]),
        http_status=row["http_status"],
        error=row["error"],
        sis_batch_id=row["sis_batch_id"],
        request_id=row["request_id"],
        answered_at=dt(row["answered_at"]),
        source=None if row["source"] is None else SourceObject(**json.loads(row["source"])),
        reported=row["reported"],
    )


def source_json(source: SourceObject | None) -> str | None:
    if source is None:
        return None
    return json.dumps(
        {
            "bucket": source.bucket,
            "key": source.key,
            "etag": source.etag,
            "version_id": source.version_id,
            "sequencer": source.sequencer,
        }
    )


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now, not at the first write) ... COMMIT, or ROLLBACK."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        # SQLite has already rolled back on some errors (SQLITE_FULL, IOERR...): a second
        # ROLLBACK would fail and hide the real cause.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect(path: Path, *, busy_seconds: float = 5.0, autocheckpoint: bool = True) -> sqlite3.Connection:
    """Open the database, apply pending migrations, and return the connection.

    Opening waits up to 5 s for other processes (the schema may need migrating); afterwards the
    connection waits `busy_seconds` for a lock. Without `autocheckpoint` the caller checkpoints.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=5.0)
    try:
        conn.row_factory = sqlite3.Row
        _wal(conn)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        migrate(conn)
        conn.execute(f"PRAGMA busy_timeout = {round(busy_seconds * 1000)}")
        if not autocheckpoint:
            conn.execute("PRAGMA wal_autocheckpoint = 0")
    except BaseException:
        conn.close()
        raise
    return conn


def _wal(conn: sqlite3.Connection, wait_seconds: float = 5.0) -> None:
    """Switch a new file to WAL. Of processes switching at once, SQLite fails the losers with
    "database is locked" without calling the busy handler: try again until the file is WAL."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        time.sleep(0.01)


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to the latest version; returns it. Refuses a newer schema than we know.

    The version is read inside each step's write transaction: two processes opening a new store
    at once would otherwise both read 0 and both create the tables.
    """
    while True:
        with transaction(conn):
            version: int = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > len(MIGRATIONS):
                raise StoreUnavailable(
                    f"the database schema is version {version}, newer than this release knows "
                    f"({len(MIGRATIONS)}): upgrade sis-consumer"
                )
            if version == len(MIGRATIONS):
                return version
            for statement in filter(str.strip, MIGRATIONS[version].split(";")):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
