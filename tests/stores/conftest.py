"""One store contract, every store: each test here runs against each store the daemon can open."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consumer.adapters.store_sqlite import open_sqlite
from consumer.ports import Store
from tests.support.stores import OpenStore


@pytest.fixture(params=["sqlite"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens the same store each time it is called (a second call is a restart)."""
    path = tmp_path / "state.db"
    return lambda: open_sqlite(path)


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    async with open_store() as opened:
        yield opened
