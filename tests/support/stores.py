"""Opening stores in tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from consumer.ports import Store

OpenStore = Callable[[], AbstractAsyncContextManager[Store]]
"""Opens the same store each time it is called: a second call is a restart."""
