"""Keeping a SQLite store small and its WAL short, off the event loop.

Runs in the store's one worker thread, each step on its own short-lived connection: the
checkpoint (where SQLite fsyncs) every few seconds, and pruning of what is past retention when the
daemon opens the store and every hour after. A step that finds the database busy is skipped; the
next round does it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from consumer.adapters.sqlite_schema import BUSY_SECONDS
from consumer.adapters.sqlite_writes import transaction, ts

CHECKPOINT_SECONDS: Final = 5.0
PRUNE_SECONDS: Final = 3600.0


def checkpoint(path: Path, mode: str = "PASSIVE") -> None:
    """Copy the WAL back into the database (this is where SQLite fsyncs), on its own connection."""
    with _closing(path) as conn:
        conn.execute(f"PRAGMA wal_checkpoint({mode})")


def fsync(wal: Path) -> None:
    """Flush the WAL to the disk: every commit in it survives a power loss from now on."""
    try:
        fd = os.open(wal, os.O_RDONLY)
    except FileNotFoundError:
        return  # no WAL: everything is in the database file, which the checkpoint synced
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prune(path: Path, before: datetime) -> None:
    """Forget journal entries and counted effects recorded before `before`."""
    with _closing(path) as conn, transaction(conn):
        conn.execute("DELETE FROM journal WHERE recorded_at < ?", (ts(before),))
        conn.execute("DELETE FROM outbox WHERE claimed_by IS NOT NULL AND recorded_at < ?", (ts(before),))


@contextlib.contextmanager
def _closing(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path, timeout=BUSY_SECONDS, isolation_level=None)
    try:
        yield conn
    except sqlite3.OperationalError:
        pass  # busy or locked: the next round does it
    finally:
        conn.close()


async def prune_past(path: Path, executor: ThreadPoolExecutor, retention_seconds: float) -> None:
    before = datetime.now(UTC) - timedelta(seconds=retention_seconds)
    await asyncio.get_running_loop().run_in_executor(executor, prune, path, before)


async def maintain(path: Path, executor: ThreadPoolExecutor, retention_seconds: float) -> None:
    """Checkpoint every few seconds; prune what is past retention every hour."""
    loop = asyncio.get_running_loop()
    next_prune = loop.time() + PRUNE_SECONDS
    while True:
        await asyncio.sleep(CHECKPOINT_SECONDS)
        await loop.run_in_executor(executor, checkpoint, path)
        if loop.time() >= next_prune:
            await prune_past(path, executor, retention_seconds)
            next_prune = loop.time() + PRUNE_SECONDS
