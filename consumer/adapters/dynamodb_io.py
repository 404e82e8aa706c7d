"""DynamoDB calls as the stores need them: counted, with errors sorted into conflict or outage.

Throttling (`ProvisionedThroughputExceededException`, `ThrottlingException`) is retried by
botocore's standard retry mode with backoff; what still fails becomes `StoreUnavailable`, so the
message that needed the write is retried later and never acked without its commit. A failed
condition is a `Conflict`: the caller re-reads and re-applies.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from consumer.adapters.dynamodb_schema import Item
from consumer.errors import StoreUnavailable

if TYPE_CHECKING:
    from types_aiobotocore_dynamodb import DynamoDBClient

RequestHook = Callable[[str, str], None]
"""Called with (operation, result) after every DynamoDB call: `ok` or an error code."""

_RETRIED_IN_TRANSACTIONS = frozenset(
    {"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"}
)


ATTEMPTS: Final = 8
"""Reads and re-applies after a conflict before a change is given up (and its message retried)."""


class Conflict(Exception):
    """A condition failed: someone wrote first. `failed` holds the positions of the failed writes."""

    def __init__(self, failed: Sequence[int] = ()) -> None:
        super().__init__(f"condition failed at {list(failed)}")
        self.failed = tuple(failed)


class TableMissing(StoreUnavailable):
    """The table does not exist: `store init` or the CloudFormation template creates it."""


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "ClientError"))


class Dynamo:
    """One table through one aiobotocore client."""

    def __init__(self, client: DynamoDBClient, table: str, hook: RequestHook) -> None:
        self.client = client
        self.table = table
        self._hook = hook

    async def call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        method = getattr(self.client, _snake(operation))
        try:
            response: dict[str, Any] = await method(**kwargs)
        except ClientError as exc:
            code = _code(exc)
            self._hook(operation, code)
            if code == "ConditionalCheckFailedException":
                raise Conflict() from exc
            if code == "TransactionCanceledException":
                raise _cancelled(exc) from exc
            if code == "ResourceNotFoundException":
                raise TableMissing(
                    f"dynamodb: table {self.table!r} does not exist: create it with "
                    "`sis-consumer store init` or the CloudFormation template"
                ) from exc
            raise StoreUnavailable(f"dynamodb: {operation}: {code}: {exc}") from exc
        except BotoCoreError as exc:
            self._hook(operation, type(exc).__name__)
            raise StoreUnavailable(f"dynamodb: {operation}: {exc}") from exc
        self._hook(operation, "ok")
        return response

    async def get(self, key: Item) -> Item | None:
        response = await self.call("GetItem", TableName=self.table, Key=key, ConsistentRead=True)
        item: Item | None = response.get("Item")
        return item

    async def get_many(self, keys: Sequence[Item]) -> list[Item | None]:
        """Consistent reads of a few items in one request, in the order of `keys`."""
        wanted = {(k["pk"]["S"], k["sk"]["S"]) for k in keys}
        found: dict[tuple[str, str], Item] = {}
        request: dict[str, Any] = {self.table: {"Keys": list(keys), "ConsistentRead": True}}
        while request:
            response = await self.call("BatchGetItem", RequestItems=request)
            for item in response.get("Responses", {}).get(self.table, []):
                found[(item["pk"]["S"], item["sk"]["S"])] = item
            request = response.get("UnprocessedKeys") or {}
        assert set(found) <= wanted
        return [found.get((k["pk"]["S"], k["sk"]["S"])) for k in keys]

    async def write(self, writes: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """One conditional write (its response is returned), or several that must move together
        in one transaction.

        Each write is a TransactWriteItems entry (`{"Put": {...}}`, `{"Update": {...}}`,
        `{"ConditionCheck": {...}}`) without `TableName`.
        """
        if len(writes) == 1 and "ConditionCheck" not in writes[0]:
            ((kind, body),) = writes[0].items()
            operation = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}[kind]
            try:
                return await self.call(operation, TableName=self.table, **body)
            except Conflict:
                raise Conflict([0]) from None
        entries = [{kind: {"TableName": self.table, **body}} for w in writes for kind, body in w.items()]
        return await self.call("TransactWriteItems", TransactItems=entries)

    async def pages(self, operation: str, **kwargs: Any) -> AsyncIterator[Item]:
        """Every item of a Query or Scan, page after page."""
        kwargs = {"TableName": self.table, **kwargs}
        while True:
            response = await self.call(operation, **kwargs)
            for item in response.get("Items", []):
                yield item
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start


def _cancelled(exc: ClientError) -> Exception:
    reasons = exc.response.get("CancellationReasons") or []
    codes = [str(r.get("Code", "None")) for r in reasons]
    failed = [i for i, code in enumerate(codes) if code == "ConditionalCheckFailed"]
    if failed:
        return Conflict(failed)
    if any(code in _RETRIED_IN_TRANSACTIONS for code in codes):
        return Conflict()  # another transaction on the same items: read again and retry
    return StoreUnavailable(f"dynamodb: transaction cancelled: {codes}")


def _snake(operation: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in operation).lstrip("_")


@asynccontextmanager
async def open_dynamo(table: str, *, region: str | None, hook: RequestHook) -> AsyncIterator[Dynamo]:
    """A client for the table. Endpoint and credentials come from botocore's own chain
    (`AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, the ECS task role...)."""
    config = AioConfig(
        connect_timeout=5,
        read_timeout=10,
        retries={"mode": "standard", "max_attempts": 6},
        max_pool_connections=32,
    )
    async with get_session().create_client("dynamodb", region_name=region, config=config) as client:
        yield Dynamo(client, table, hook)


async def ensure_table(db: Dynamo, definition: dict[str, Any], ttl_attribute: str) -> list[str]:
    """Create the table if it is missing, then make sure TTL and point-in-time recovery are on.
    Returns what it did, one line per step; running it again changes nothing."""
    done: list[str] = []
    try:
        await db.call("DescribeTable", TableName=db.table)
    except TableMissing:
        await db.call("CreateTable", **definition)
        done.append(
            f"created table {db.table} (on-demand, encrypted, indexes: unfinished, outbox, results_due)"
        )
    for _ in range(120):  # a new table takes seconds to become ACTIVE
        table = (await db.call("DescribeTable", TableName=db.table))["Table"]
        if table.get("TableStatus") == "ACTIVE":
            break
        await asyncio.sleep(1)
    else:
        raise StoreUnavailable(f"dynamodb: table {db.table} did not become ACTIVE within 2 minutes")
    ttl = (await db.call("DescribeTimeToLive", TableName=db.table))["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") not in {"ENABLED", "ENABLING"}:
        await db.call(
            "UpdateTimeToLive",
            TableName=db.table,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl_attribute},
        )
        done.append(f"enabled TTL on {ttl_attribute} (journal entries expire)")
    backups = (await db.call("DescribeContinuousBackups", TableName=db.table))["ContinuousBackupsDescription"]
    recovery = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if recovery != "ENABLED":
        await db.call(
            "UpdateContinuousBackups",
            TableName=db.table,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )
        done.append("enabled point-in-time recovery")
    return done or [f"table {db.table} is ready: nothing to do"]
