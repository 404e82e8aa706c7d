"""Fixtures for tests that run the real daemon against a simulated Canvas, shared by several test
packages (registered in tests/conftest.py).

`canvas_for(knobs)` starts a simulated Canvas (on its own thread) publishing to this test's queue;
`daemon_for(canvas, **env)` starts the real `sis-consumer run` process pointed at that queue and
that Canvas, with the shortened timings of `tests.support.reconcile.FAST` unless the test overrides
them. `canvas_thread` is one such Canvas with default knobs. `aws_env` puts this test's queues in the
environment, for code that reads its settings from there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import Queues
from tests.support.canvas_thread import CanvasThread, InFlightProxy
from tests.support.daemon import Daemon
from tests.support.reconcile import FAST

CanvasFactory = Callable[..., CanvasThread]
DaemonFactory = Callable[..., Daemon]


@pytest.fixture
def canvas_for(queues: Queues) -> Iterator[CanvasFactory]:
    started: list[CanvasThread] = []

    def start(knobs: Knobs | None = None, *, proxy: bool | type[InFlightProxy] = False) -> CanvasThread:
        thread = CanvasThread(queues, knobs or Knobs(), proxy=proxy)
        started.append(thread)
        return thread.start()

    yield start
    for thread in reversed(started):
        thread.close()


@pytest.fixture
def daemon_for(queues: Queues, tmp_path: Path) -> Iterator[DaemonFactory]:
    """Start daemons (all on the same store file, `tmp_path/state.db`); all killed at the end."""
    started: list[Daemon] = []

    def start(canvas: CanvasThread | None, *, on: Queues | None = None, **env: str) -> Daemon:
        daemon = Daemon(on or queues, tmp_path, **{**FAST, **(canvas.env() if canvas else {}), **env})
        started.append(daemon)
        return daemon.start()

    yield start
    for daemon in started:
        daemon.close()


@pytest.fixture
def canvas_thread(queues: Queues) -> Iterator[CanvasThread]:
    """A simulated Canvas on its own loop: the `Daemon` helper waits synchronously, and would freeze
    a Canvas served from the test's loop."""
    thread = CanvasThread(queues, Knobs()).start()
    yield thread
    thread.close()


@pytest.fixture
def aws_env(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> Queues:
    """This test's queues, also in the environment (for daemons and clients started without explicit
    settings)."""
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    return queues
