"""Fixtures of the submit tests. The sandbox's come from `consumer.sandbox.fixtures`; `local_sqs` and
`queues` from tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.sandbox.fixtures import canvas, canvas_accounts, http, knobs, sqs_publisher
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import Queues
from tests.e2e.daemon import Daemon
from tests.reconcile.canvas_thread import CanvasThread
from tests.reconcile.helpers import FAST

__all__ = ["canvas", "canvas_accounts", "canvas_thread", "daemon", "http", "knobs", "sqs_publisher"]


@pytest.fixture
def canvas_thread(queues: Queues) -> Iterator[CanvasThread]:
    """A simulated Canvas on its own loop: the `Daemon` helper waits synchronously, and would freeze
    a Canvas served from the test's loop."""
    thread = CanvasThread(queues, Knobs()).start()
    yield thread
    thread.close()


@pytest.fixture
def daemon(canvas_thread: CanvasThread, tmp_path: Path) -> Iterator[Daemon]:
    """The real `sis-consumer run`, on `tmp_path/state.db`, watching `canvas_thread`'s account 1."""
    process = Daemon(canvas_thread.queues, tmp_path, **{**FAST, **canvas_thread.env()})
    try:
        yield process.start()
    finally:
        process.close()
