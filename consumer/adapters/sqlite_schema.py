"""The SQLite schema: versioned migrations, and opening a database at the latest one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Final

from consumer.adapters.sqlite_writes import transaction
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
