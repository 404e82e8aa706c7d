"""`consumer.adapters.sqs` against moto's SQS HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from consumer.ack import Message
from consumer.adapters.sqs import SqsQueue, open_queue
from consumer.errors import QueueError
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.waiting import await_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass
class Calls:
    """The request hook: records every (operation, result)."""

    seen: list[tuple[str, str]] = field(default_factory=list)

    def __call__(self, operation: str, result: str) -> None:
        self.seen.append((operation, result))


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
async def queue(aws_env: Queues, calls: Calls) -> AsyncIterator[SqsQueue]:
    async with open_queue(
        aws_env.queue_url, aws_env.dlq_url, region=aws_env.region, pool_size=4, hook=calls
    ) as opened:
        yield opened


@pytest.fixture
def raw(local_sqs: LocalSqs) -> SQSClient:
    """A plain boto3 client: the test's own view of the queues."""
    return local_sqs.client()


async def send(raw: SQSClient, queue_url: str, *bodies: str) -> None:
    for body in bodies:
        await asyncio.to_thread(raw.send_message, QueueUrl=queue_url, MessageBody=body)


async def depth(raw: SQSClient, queue_url: str) -> int:
    """Messages in the queue, visible or not."""
    response = await asyncio.to_thread(
        raw.get_queue_attributes,
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )
    attrs = response["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


async def receive_all(queue: SqsQueue, n: int, visibility: int = 30) -> list[Message]:
    got: list[Message] = []

    async def more() -> bool:
        got.extend(await queue.receive(max_messages=10, wait_seconds=1, visibility=visibility))
        return len(got) >= n

    await await_until(more, timeout=10, what=f"{n} messages")
    return got


async def test_receive_returns_body_and_receive_count(queue: SqsQueue, raw: SQSClient) -> None:
    await send(raw, queue.queue_url, '{"hello": "world"}')

    (message,) = await receive_all(queue, 1)

    assert message.body == '{"hello": "world"}'
    assert message.receive_count == 1
    assert message.message_id


async def test_a_received_message_carries_when_it_was_received(queue: SqsQueue, raw: SQSClient) -> None:
    await send(raw, queue.queue_url, "first", "second")
    sent_before = datetime.now(UTC)

    messages = await receive_all(queue, 2)

    assert all(sent_before < m.received_at <= datetime.now(UTC) for m in messages)


async def test_second_receive_has_receive_count_two(queue: SqsQueue, raw: SQSClient) -> None:
    await send(raw, queue.queue_url, "again")
    await receive_all(queue, 1, visibility=0)

    (message,) = await receive_all(queue, 1)

    assert message.receive_count == 2


async def test_delete_reports_exactly_the_message_with_a_bogus_receipt_handle(
    queue: SqsQueue, raw: SQSClient
) -> None:
    await send(raw, queue.queue_url, "one", "two", "three")
    first, second, third = await receive_all(queue, 3)
    bogus = replace(second, receipt_handle="not-a-receipt-handle")

    failed = await queue.delete([first, bogus, third])

    assert failed == [bogus]
    assert await depth(raw, queue.queue_url) == 1  # only `second` is left, still in flight


async def test_partial_delete_is_reported_to_the_hook(queue: SqsQueue, raw: SQSClient, calls: Calls) -> None:
    await send(raw, queue.queue_url, "one", "two")
    first, second = await receive_all(queue, 2)

    await queue.delete([first, replace(second, receipt_handle="bogus")])

    assert calls.seen[-1] == ("DeleteMessageBatch", "partial")


async def test_change_visibility_zero_makes_a_message_receivable_at_once(
    queue: SqsQueue, raw: SQSClient
) -> None:
    await send(raw, queue.queue_url, "hide and seek")
    (hidden,) = await receive_all(queue, 1, visibility=300)

    failed = await queue.change_visibility([(hidden, 0)])
    again = await queue.receive(max_messages=10, wait_seconds=1, visibility=30)

    assert failed == []
    assert [m.message_id for m in again] == [hidden.message_id]


async def test_dead_letter_copies_body_with_reason_and_source_message_id(
    queue: SqsQueue, raw: SQSClient, queues: Queues
) -> None:
    await send(raw, queue.queue_url, "not json {")
    (message,) = await receive_all(queue, 1)

    not_sent = await queue.dead_letter([(message, "not valid JSON: truncated")])

    assert not_sent == []
    response = await asyncio.to_thread(
        raw.receive_message,
        QueueUrl=queues.dlq_url,
        MessageAttributeNames=["All"],
        WaitTimeSeconds=1,
    )
    (copied,) = response["Messages"]
    assert copied["Body"] == "not json {"
    attributes = copied["MessageAttributes"]
    assert attributes["sis_consumer_reason"]["StringValue"] == "not valid JSON: truncated"
    assert attributes["sis_consumer_source_message_id"]["StringValue"] == message.message_id


async def test_dead_letter_without_a_dlq_returns_the_messages_unsent(aws_env: Queues, raw: SQSClient) -> None:
    calls = Calls()
    async with open_queue(aws_env.queue_url, None, region=aws_env.region, pool_size=2, hook=calls) as queue:
        await send(raw, queue.queue_url, "garbage")
        (message,) = await receive_all(queue, 1)
        calls.seen.clear()

        not_sent = await queue.dead_letter([(message, "garbage")])

    assert not_sent == [message]
    assert calls.seen == []
    assert await depth(raw, aws_env.dlq_url) == 0


async def test_check_on_a_nonexistent_queue_raises_queue_error(aws_env: Queues) -> None:
    calls = Calls()
    missing = f"{aws_env.endpoint_url}/123456789012/canvas-live-events-does-not-exist"
    async with open_queue(missing, None, region=aws_env.region, pool_size=2, hook=calls) as queue:
        with pytest.raises(QueueError, match="GetQueueAttributes"):
            await queue.check()

    ((operation, result),) = calls.seen
    assert operation == "GetQueueAttributes"
    assert result != "ok"


async def test_check_on_an_existing_queue_reports_ok(queue: SqsQueue, calls: Calls) -> None:
    await queue.check()

    assert calls.seen == [("GetQueueAttributes", "ok")]


async def test_every_call_reports_operation_and_result_to_the_hook(
    queue: SqsQueue, raw: SQSClient, calls: Calls
) -> None:
    await send(raw, queue.queue_url, "a", "b")
    await queue.check()
    first, second = await receive_all(queue, 2)
    await queue.change_visibility([(first, 60)])
    await queue.dead_letter([(second, "testing")])
    await queue.delete([first, second])

    receives = [c for c in calls.seen if c[0] == "ReceiveMessage"]
    others = [c for c in calls.seen if c[0] != "ReceiveMessage"]
    assert receives
    assert all(result == "ok" for _, result in receives)
    assert others == [
        ("GetQueueAttributes", "ok"),
        ("ChangeMessageVisibilityBatch", "ok"),
        ("SendMessageBatch", "ok"),
        ("DeleteMessageBatch", "ok"),
    ]


async def test_empty_batches_make_no_calls(queue: SqsQueue, calls: Calls) -> None:
    assert await queue.delete([]) == []
    assert await queue.change_visibility([]) == []
    assert await queue.dead_letter([]) == []

    assert calls.seen == []
