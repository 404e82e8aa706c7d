"""Fixtures of the command tests: a simulated Canvas on its own thread (the commands run as
subprocesses), publishing to `queues` (tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import Queues
from tests.support.canvas_thread import CanvasThread


@pytest.fixture
def canvas_thread(queues: Queues) -> Iterator[CanvasThread]:
    thread = CanvasThread(queues, Knobs()).start()
    yield thread
    thread.close()
