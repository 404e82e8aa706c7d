"""Fixtures of the end-to-end tests that start daemons by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.sandbox.local_sqs import Queues
from tests.support.daemon import Daemon


@pytest.fixture
def env(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> Queues:
    """This test's queues, also in the environment (for daemons started without explicit settings)."""
    for key, value in queues.env().items():
        monkeypatch.setenv(key, value)
    return queues


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; all closed at the end."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()
