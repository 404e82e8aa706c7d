"""Fixtures of the submit tests; the simulated Canvas and `canvas_thread` come from the plugins
registered in tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.canvas_thread import CanvasThread
from tests.support.daemon import Daemon
from tests.support.reconcile import FAST


@pytest.fixture
def daemon(canvas_thread: CanvasThread, tmp_path: Path) -> Iterator[Daemon]:
    """The real `sis-consumer run`, on `tmp_path/state.db`, watching `canvas_thread`'s account 1."""
    process = Daemon(canvas_thread.queues, tmp_path, **{**FAST, **canvas_thread.env()})
    try:
        yield process.start()
    finally:
        process.close()
