"""The real daemon against the simulated Canvas and moto's SQS, with thresholds in seconds.

`canvas_for(knobs)` starts a simulated Canvas (on its own thread) publishing to this test's queue;
`daemon_for(canvas, **env)` starts the real `sis-consumer run` process pointed at that queue and
that Canvas, with the shortened timings of `helpers.FAST` unless the test overrides them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from consumer.sandbox.fixtures import canvas, canvas_accounts, knobs, sqs_publisher
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import Queues
from tests.e2e.daemon import Daemon
from tests.reconcile.canvas_thread import CanvasThread, InFlightProxy
from tests.reconcile.helpers import FAST

CanvasFactory = Callable[..., CanvasThread]
DaemonFactory = Callable[..., Daemon]

__all__ = ["canvas", "canvas_accounts", "canvas_for", "daemon_for", "knobs", "sqs_publisher"]


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
