"""A Worker and MessageHandler in-process against moto's SQS server and a real SQLite store: what
the worker and app-stop tests drive (the `rig` fixture is in tests/adapters/conftest.py), and what
`tests.bench.trip` traces."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from consumer.ack import Message, Outcome
from consumer.adapters.sqs import SqsQueue, open_queue
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.daemon.handler import MessageHandler
from consumer.daemon.worker import PollSettings, Worker
from consumer.observability.http import Health
from consumer.observability.metrics import Metrics
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.waiting import await_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@dataclass
class Rig:
    """Everything a worker test needs; `start` runs a worker as a task until `stop` is set."""

    queues: Queues
    raw: SQSClient
    store: SqliteStore
    queue: SqsQueue
    registry: CollectorRegistry
    metrics: Metrics
    health: Health
    stop: asyncio.Event
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def handler(self) -> MessageHandler:
        return MessageHandler(self.store, self.metrics, frozenset())

    def start(
        self,
        *,
        queue: SqsQueue | None = None,
        handler: MessageHandler | None = None,
        visibility_timeout: int = 30,
        wait_seconds: int = 1,
        durable: Callable[[], Awaitable[None]] | None = None,
        watched: bool = True,
    ) -> asyncio.Task[None]:
        worker = Worker(
            queue or self.queue,
            handler or self.handler(),
            PollSettings(pollers=2, wait_seconds=wait_seconds, visibility_timeout=visibility_timeout),
            self.metrics,
            self.health if watched else None,
            durable=durable or self.store.flush,
        )
        task = asyncio.create_task(worker.run(self.stop))
        self.tasks.append(task)
        return task

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value

    def messages(self, outcome: str) -> float:
        return self.sample("sis_consumer_messages_total", outcome=outcome)

    def sqs_errors(self, operation: str) -> float:
        return sum(
            s.value
            for metric in self.registry.collect()
            if metric.name == "sis_consumer_sqs_requests"
            for s in metric.samples
            if s.name.endswith("_total") and s.labels["operation"] == operation and s.labels["result"] != "ok"
        )

    async def send(self, body: str, queue_url: str | None = None) -> None:
        await asyncio.to_thread(
            self.raw.send_message, QueueUrl=queue_url or self.queues.queue_url, MessageBody=body
        )

    async def counts(self, queue_url: str | None = None) -> tuple[int, int]:
        """(visible, in flight) messages of a queue."""
        response = await asyncio.to_thread(
            self.raw.get_queue_attributes,
            QueueUrl=queue_url or self.queues.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
        attrs = response["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    async def wait_for(self, check: Callable[[], bool], what: str, timeout: float = 15) -> None:
        await await_until(check, timeout=timeout, what=what)

    async def store_pragma(self, sql: str) -> None:
        # The store's connection belongs to its one executor thread: run the pragma there.
        loop = asyncio.get_running_loop()
        store = self.store
        await loop.run_in_executor(store._executor, lambda: store._conn.execute(sql).fetchall())


@asynccontextmanager
async def open_rig(queues: Queues, local_sqs: LocalSqs, directory: Path) -> AsyncIterator[Rig]:
    """A rig on `queues` with its store in `directory`, wired as `app.serve` wires the daemon's
    (the SQS hook counts into the rig's metrics). Workers still running at the end are ended
    before the queue closes: a test that failed half-way may leave one."""
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    async with (
        open_sqlite(directory / "state.db") as store,
        open_queue(
            queues.queue_url,
            queues.dlq_url,
            region=queues.region,
            pool_size=8,
            hook=metrics.record_sqs_request,
        ) as queue,
    ):
        stop = asyncio.Event()
        rig = Rig(queues, local_sqs.client(), store, queue, registry, metrics, Health(stall_after=60), stop)
        try:
            yield rig
        finally:
            stop.set()
            for task in rig.tasks:
                task.cancel()
            await asyncio.gather(*rig.tasks, return_exceptions=True)


class GatedHandler(MessageHandler):
    """Slow work: waits for `release` before handling (the one stand-in these tests use)."""

    def __init__(self, store: SqliteStore, metrics: Metrics) -> None:
        super().__init__(store, metrics, frozenset())
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = 0

    async def handle(self, message: Message) -> Outcome:
        self.entered.set()
        await self.release.wait()
        self.handled += 1
        return await super().handle(message)
