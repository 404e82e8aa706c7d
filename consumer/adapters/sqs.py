"""The Live Events queue through aiobotocore: receive, batch delete, visibility, dead-lettering.

Only this module talks to SQS. Batch calls report per-entry failures back to the caller instead of
raising, because one bad receipt handle must not fail the other nine messages of a batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from consumer.ack import Message
from consumer.errors import QueueError

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.type_defs import MessageTypeDef

RequestHook = Callable[[str, str], None]
"""Called with (operation, result) after every SQS call: `ok` or an error code."""


def _message(raw: MessageTypeDef, received_at: datetime) -> Message:
    attrs = raw.get("Attributes", {})
    return Message(
        message_id=raw.get("MessageId", ""),
        receipt_handle=raw.get("ReceiptHandle", ""),
        body=raw.get("Body", ""),
        receive_count=int(attrs.get("ApproximateReceiveCount", "1")),
        received_at=received_at,
    )


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


class SqsQueue:
    def __init__(self, client: SQSClient, queue_url: str, dlq_url: str | None, hook: RequestHook) -> None:
        self._client = client
        self.queue_url = queue_url
        self.dlq_url = dlq_url
        self._hook = hook

    async def check(self) -> None:
        """Prove the queue exists and we may use it."""
        try:
            await self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )
        except (ClientError, BotoCoreError) as exc:
            self._hook("GetQueueAttributes", _error_code(exc))
            raise QueueError(f"GetQueueAttributes on {self.queue_url}: {exc}") from exc
        self._hook("GetQueueAttributes", "ok")

    async def attributes(self) -> dict[str, str]:
        """Every attribute of the queue (`sis-consumer check-config --probe` reports them)."""
        try:
            response = await self._client.get_queue_attributes(
                QueueUrl=self.queue_url, AttributeNames=["All"]
            )
        except (ClientError, BotoCoreError) as exc:
            self._hook("GetQueueAttributes", _error_code(exc))
            raise QueueError(f"GetQueueAttributes: {_error_code(exc)}: {exc}") from exc
        self._hook("GetQueueAttributes", "ok")
        return {str(k): str(v) for k, v in response.get("Attributes", {}).items()}

    async def receive(self, *, max_messages: int, wait_seconds: int, visibility: int) -> list[Message]:
        try:
            response = await self._client.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=max_messages,
                WaitTimeSeconds=wait_seconds,
                VisibilityTimeout=visibility,
                # The only attribute we use (retry backoff); each one more is parsed per message.
                MessageSystemAttributeNames=["ApproximateReceiveCount"],
            )
        except (ClientError, BotoCoreError) as exc:
            self._hook("ReceiveMessage", _error_code(exc))
            raise QueueError(f"ReceiveMessage: {exc}") from exc
        self._hook("ReceiveMessage", "ok")
        received_at = datetime.now(UTC)
        return [_message(m, received_at) for m in response.get("Messages", [])]

    async def delete(self, messages: Sequence[Message]) -> list[Message]:
        """Delete in one call; returns the messages that could not be deleted."""
        if not messages:
            return []
        entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(messages)]
        try:
            response = await self._client.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            self._hook("DeleteMessageBatch", _error_code(exc))
            return list(messages)
        failed = [messages[int(f["Id"])] for f in response.get("Failed", [])]
        self._hook("DeleteMessageBatch", "ok" if not failed else "partial")
        return failed

    async def change_visibility(self, delays: Sequence[tuple[Message, int]]) -> list[Message]:
        """Set each message's visibility timeout; returns those that failed."""
        if not delays:
            return []
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
            for i, (m, seconds) in enumerate(delays)
        ]
        try:
            response = await self._client.change_message_visibility_batch(
                QueueUrl=self.queue_url,
                Entries=entries,  # type: ignore[arg-type]
            )
        except (ClientError, BotoCoreError) as exc:
            self._hook("ChangeMessageVisibilityBatch", _error_code(exc))
            return [m for m, _ in delays]
        failed = [delays[int(f["Id"])][0] for f in response.get("Failed", [])]
        self._hook("ChangeMessageVisibilityBatch", "ok" if not failed else "partial")
        return failed

    async def dead_letter(self, messages: Sequence[tuple[Message, str]]) -> list[Message]:
        """Copy messages to the DLQ with the reason attached; returns those not copied."""
        if not messages:
            return []
        if self.dlq_url is None:  # the one place that knows: the worker leaves them to the redrive policy
            return [m for m, _ in messages]
        entries = [
            {
                "Id": str(i),
                "MessageBody": m.body,
                "MessageAttributes": {
                    "sis_consumer_reason": {"DataType": "String", "StringValue": reason[:1000]},
                    "sis_consumer_source_message_id": {"DataType": "String", "StringValue": m.message_id},
                },
            }
            for i, (m, reason) in enumerate(messages)
        ]
        try:
            response = await self._client.send_message_batch(QueueUrl=self.dlq_url, Entries=entries)  # type: ignore[arg-type]
        except (ClientError, BotoCoreError) as exc:
            self._hook("SendMessageBatch", _error_code(exc))
            return [m for m, _ in messages]
        failed = [messages[int(f["Id"])][0] for f in response.get("Failed", [])]
        self._hook("SendMessageBatch", "ok" if not failed else "partial")
        return failed


@asynccontextmanager
async def open_queue(
    queue_url: str,
    dlq_url: str | None,
    *,
    region: str | None,
    pool_size: int,
    hook: RequestHook,
) -> AsyncIterator[SqsQueue]:
    """A client for the queue. Endpoint and credentials come from botocore's own chain
    (`AWS_ENDPOINT_URL[_SQS]`, the ECS task role...)."""
    config = AioConfig(
        max_pool_connections=pool_size,
        connect_timeout=10,
        read_timeout=40,  # above the 20 s long poll
        retries={"mode": "standard", "max_attempts": 3},
    )
    session = get_session()
    async with session.create_client("sqs", region_name=region, config=config) as client:
        yield SqsQueue(client, queue_url, dlq_url, hook)
