"""The simulated Canvas's two SQS ends: a publisher (Canvas's side) and an inbox (a test's side).

`SqsPublisher` is the `publish` callable a `SimulatedCanvas` takes: one `SendMessage` per event,
the event JSON as the body, exactly as Canvas delivers to a customer's queue. `SqsInbox` receives
and deletes, keeping the decoded bodies, so a test can wait for what reached the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from aiobotocore.session import get_session

from consumer.sandbox.local_sqs import FAKE_CREDENTIALS, Queues

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient


class _SqsClient:
    def __init__(self, queues: Queues) -> None:
        self.queues = queues
        self._stack = contextlib.AsyncExitStack()
        self._client: SQSClient | None = None

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            raise RuntimeError("use `async with` first")
        return self._client

    async def __aenter__(self) -> Self:
        session = get_session()
        self._client = await self._stack.enter_async_context(
            session.create_client(
                "sqs",
                endpoint_url=self.queues.endpoint_url,
                region_name=self.queues.region,
                aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
                aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
            )
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._client = None
        await self._stack.aclose()


class SqsPublisher(_SqsClient):
    async def __call__(self, body: str) -> None:
        await self.client.send_message(QueueUrl=self.queues.queue_url, MessageBody=body)


class SqsInbox(_SqsClient):
    def __init__(self, queues: Queues, queue_url: str | None = None) -> None:
        super().__init__(queues)
        self.queue_url = queue_url or queues.queue_url
        self.bodies: list[str] = []

    @property
    def events(self) -> list[dict[str, Any]]:
        return [json.loads(body) for body in self.bodies]

    async def receive(self) -> int:
        """One short `ReceiveMessage`; keeps and deletes what came. Returns how many came."""
        got = await self.client.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        messages = got.get("Messages", [])
        if messages:
            self.bodies += [m["Body"] for m in messages]
            await self.client.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(messages)],
            )
        return len(messages)

    async def collect(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Receive until at least `count` messages arrived in all; TimeoutError otherwise."""
        async with asyncio.timeout(timeout):
            while len(self.bodies) < count:
                if not await self.receive():
                    await asyncio.sleep(0.02)
        return self.events

    async def settle(self, quiet: float = 0.3, timeout: float = 5.0) -> list[dict[str, Any]]:  # noqa: ASYNC109
        """Receive until nothing new arrives for `quiet` seconds: for checking what did NOT arrive."""
        async with asyncio.timeout(timeout):
            loop = asyncio.get_running_loop()
            last = loop.time()
            while loop.time() - last < quiet:
                if await self.receive():
                    last = loop.time()
                else:
                    await asyncio.sleep(0.02)
        return self.events
