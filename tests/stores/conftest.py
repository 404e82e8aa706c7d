"""One store contract, every store: each test here runs against each store the daemon can open."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.adapters.store_sqlite import open_sqlite
from consumer.ports import Store
from consumer.sandbox.local_sqs import REGION
from tests.support.dynamodb import LocalDynamoDB, create_table, dynamodb_env, environment, new_table_name
from tests.support.records import KEEP_JOURNAL
from tests.support.stores import DAEMON, OpenStore


@pytest.fixture
def aws(local_dynamodb: LocalDynamoDB) -> Iterator[None]:
    with environment(dynamodb_env(local_dynamodb)):
        yield


@pytest.fixture(params=["sqlite", "dynamodb"])
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> OpenStore:
    """Opens the same store each time it is called (a second call is a restart), owned by a daemon."""
    if request.param == "sqlite":
        path = tmp_path / "state.db"
        return lambda owner=DAEMON: open_sqlite(path, owner=owner, retention_seconds=KEEP_JOURNAL)
    request.getfixturevalue("aws")
    table = new_table_name()
    await create_table(table)
    return lambda owner=DAEMON: open_dynamodb(table, region=REGION, owner=owner)


@pytest.fixture
async def store(open_store: OpenStore) -> AsyncIterator[Store]:
    async with open_store() as opened:
        yield opened
