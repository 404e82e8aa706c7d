"""Which store a `SIS_CONSUMER_STORE` URL opens; `store init` and `store copy`.

SQLite is for one process on one host with a local disk. DynamoDB is shared by every replica.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace

from consumer.adapters.dynamodb_io import RequestHook, ensure_table, open_dynamo
from consumer.adapters.dynamodb_restore import restore
from consumer.adapters.dynamodb_schema import TTL_ATTRIBUTE, table_definition
from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.adapters.store_sqlite import open_sqlite
from consumer.config import Settings
from consumer.errors import ConfigError
from consumer.ports import Store


def instance_id() -> str:
    """This process among the replicas: host, pid and a random part (a restart is a new one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@asynccontextmanager
async def open_store(
    settings: Settings, *, owner: str | None = None, hook: RequestHook | None = None, existing: bool = False
) -> AsyncIterator[Store]:
    """Open the configured store. `owner`: the daemon that counts what it commits (None for a
    command such as `submit`, whose effects a daemon counts later). `existing`: a command that only
    reads (`imports`) refuses a store that is not there rather than create an empty one."""
    table = settings.dynamodb_table
    if table is not None:
        async with open_dynamodb(
            table,
            region=settings.region,
            owner=owner,
            retention_seconds=settings.journal_retention,
            hook=hook,
        ) as dynamodb:
            yield dynamodb
        return
    path = settings.sqlite_path
    assert path is not None  # the settings accept no third kind of URL
    if existing and not path.is_file():
        raise ConfigError(
            f"SIS_CONSUMER_STORE: {path.absolute()} does not exist: point SIS_CONSUMER_STORE at the "
            "daemon's store (`sis-consumer check-config` where the daemon runs shows it)"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    async with open_sqlite(path, owner=owner, retention_seconds=settings.journal_retention) as sqlite:
        yield sqlite


async def init_store(settings: Settings) -> list[str]:
    """Create the configured store if it is missing (`sis-consumer store init`); what it did."""
    table = settings.dynamodb_table
    if table is None:
        path = settings.sqlite_path
        assert path is not None
        existed = path.exists()
        path.parent.mkdir(parents=True, exist_ok=True)
        async with open_sqlite(path):
            pass
        return [f"sqlite store {path} {'is ready: nothing to do' if existed else 'created'}"]
    async with open_dynamo(table, region=settings.region, hook=lambda _op, _result: None) as db:
        return await ensure_table(db, table_definition(table), TTL_ATTRIBUTE)


async def copy_store(settings: Settings, source: str, target: str) -> Counter[str]:
    """Copy imports, submissions and results from a SQLite store into a DynamoDB table
    (`sis-consumer store copy`); running it twice changes nothing."""
    source_path = replace(settings, store_url=source).sqlite_path
    table = replace(settings, store_url=target).dynamodb_table
    if source_path is None or table is None:
        raise ConfigError("store copy takes a sqlite:///path source and a dynamodb://table target")
    if not source_path.is_file():
        raise ConfigError(f"store copy: {source_path}: no such file")
    async with open_sqlite(source_path) as sqlite:
        export = await sqlite.export()
    async with open_dynamodb(table, region=settings.region) as dynamodb:
        return await restore(dynamodb.db, export)
