"""How the DynamoDB adapter sorts what a call can end in: done, a conflict to re-read, or an outage.

A stand-in client raises what botocore raises once its own retries are spent; the real server is
used everywhere else (tests/stores).
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from consumer.adapters.dynamodb_io import Conflict, Dynamo, TableMissing
from consumer.errors import StoreUnavailable


class Failing:
    def __init__(self, error: Exception) -> None:
        self.error = error

    async def put_item(self, **_kwargs: Any) -> dict[str, Any]:
        raise self.error

    async def transact_write_items(self, **_kwargs: Any) -> dict[str, Any]:
        raise self.error


def client_error(code: str, reasons: list[str] | None = None) -> ClientError:
    response: dict[str, Any] = {"Error": {"Code": code, "Message": code}}
    if reasons is not None:
        response["CancellationReasons"] = [{"Code": r} for r in reasons]
    return ClientError(response, "op")  # type: ignore[arg-type]


def dynamo(error: Exception, seen: list[tuple[str, str]]) -> Dynamo:
    return Dynamo(Failing(error), "t", lambda op, result: seen.append((op, result)))  # type: ignore[arg-type]


PUT = {"Put": {"Item": {"pk": {"S": "a"}, "sk": {"S": "b"}}}}


@pytest.mark.parametrize(
    "code", ["ThrottlingException", "ProvisionedThroughputExceededException", "InternalServerError"]
)
async def test_throttling_left_after_botocore_retries_is_an_outage_so_the_message_is_retried(
    code: str,
) -> None:
    seen: list[tuple[str, str]] = []

    with pytest.raises(StoreUnavailable, match=code):
        await dynamo(client_error(code), seen).write([PUT])

    assert seen == [("PutItem", code)]


async def test_a_failed_condition_is_a_conflict() -> None:
    with pytest.raises(Conflict) as raised:
        await dynamo(client_error("ConditionalCheckFailedException"), []).write([PUT])

    assert raised.value.failed == (0,)


async def test_a_cancelled_transaction_names_the_writes_whose_condition_failed() -> None:
    error = client_error("TransactionCanceledException", ["None", "ConditionalCheckFailed"])

    with pytest.raises(Conflict) as raised:
        await dynamo(error, []).write([PUT, PUT])

    assert raised.value.failed == (1,)


@pytest.mark.parametrize("reason", ["TransactionConflict", "ThrottlingError"])
async def test_a_transaction_that_met_another_or_was_throttled_is_read_again(reason: str) -> None:
    error = client_error("TransactionCanceledException", ["None", reason])

    with pytest.raises(Conflict) as raised:
        await dynamo(error, []).write([PUT, PUT])

    assert raised.value.failed == ()


async def test_a_missing_table_says_how_to_create_it() -> None:
    with pytest.raises(TableMissing, match="sis-consumer store init"):
        await dynamo(client_error("ResourceNotFoundException"), []).write([PUT])


async def test_an_unreachable_endpoint_is_an_outage() -> None:
    seen: list[tuple[str, str]] = []

    with pytest.raises(StoreUnavailable):
        await dynamo(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"), seen).write([PUT])

    assert seen == [("PutItem", "EndpointConnectionError")]
