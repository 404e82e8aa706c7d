"""Wait for a condition with a deadline: the only way tests here wait.

`wait_until` blocks (for tests driving subprocesses); `await_until` is the sandbox's own async
helper, which takes a sync or an async predicate.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from consumer.sandbox.waiting import wait_until as await_until

__all__ = ["await_until", "wait_until"]

T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float = 15.0, interval: float = 0.05, what: str = "") -> T:
    """Call `check` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or check}")
        time.sleep(interval)
