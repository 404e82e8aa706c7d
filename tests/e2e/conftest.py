"""Fixtures of the end-to-end tests that start daemons by hand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.daemon import Daemon


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    """Daemons a test starts; all closed at the end."""
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()
