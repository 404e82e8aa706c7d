"""Opening stores in tests."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from consumer.ports import Store

DAEMON = "test-daemon"
"""The owner a daemon opens its store with: it counts the effects it commits."""


class OpenStore(Protocol):
    """Opens the same store each time it is called: a second call is a restart, or another process.

    `owner=None` opens it as a command does (`submit`): its effects are left for a daemon to count.
    """

    def __call__(self, owner: str | None = DAEMON) -> AbstractAsyncContextManager[Store]: ...
