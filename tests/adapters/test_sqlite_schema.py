"""Creating the SQLite schema: processes that open a new store at the same moment all succeed."""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.synchronize import Barrier
from pathlib import Path

from consumer.adapters.sqlite_schema import MIGRATIONS, connect

PROCESSES = 4
ROUNDS = 10


def open_in_step(directory: str, barrier: Barrier, failures: multiprocessing.SimpleQueue[str]) -> None:
    """In a child process: open each round's new store the moment every other process does."""
    for n in range(ROUNDS):
        barrier.wait()
        try:
            connect(Path(directory) / f"state-{n}.db").close()
        except Exception as exc:
            failures.put(f"round {n}: {type(exc).__name__}: {exc}")


def test_processes_creating_one_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")  # no fork: the test process runs threads
    barrier = context.Barrier(PROCESSES)
    failures: multiprocessing.SimpleQueue[str] = context.SimpleQueue()
    children = [
        context.Process(target=open_in_step, args=(str(tmp_path), barrier, failures))
        for _ in range(PROCESSES)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=60)

    found = []
    while not failures.empty():
        found.append(failures.get())
    assert found == []
    assert [child.exitcode for child in children] == [0] * PROCESSES
    for n in range(ROUNDS):
        with sqlite3.connect(tmp_path / f"state-{n}.db") as conn:
            assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
