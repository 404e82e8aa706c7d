"""The Worker and MessageHandler in-process, against moto's SQS server and a real SQLite store."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from prometheus_client import CollectorRegistry

from consumer.ack import Message, Outcome
from consumer.adapters.sqs import SqsQueue, open_queue
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.core.states import State
from consumer.errors import StoreUnavailable
from consumer.handler import MessageHandler
from consumer.observability.http import Health
from consumer.observability.metrics import Metrics
from consumer.ports import SystemClock
from consumer.sandbox.local_sqs import LocalSqs, Queues
from consumer.worker import PollSettings, Worker
from tests.waiting import await_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"


def sis_event(batch: int = 31048324, state: str = "initializing", user_agent: str | None = None) -> str:
    metadata: dict[str, Any] = {
        "root_account_uuid": ACCOUNT,
        "root_account_id": "10000000000001",
        "event_name": "sis_batch_created" if state == "initializing" else "sis_batch_updated",
        "event_time": "2024-03-01T02:00:00.000Z",
        "producer": "canvas",
    }
    if user_agent is not None:
        metadata["user_agent"] = user_agent
    body = {"sis_batch_id": str(batch), "account_id": "1", "workflow_state": state}
    return json.dumps({"metadata": metadata, "body": body})


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
        return MessageHandler(self.store, self.metrics, SystemClock(), frozenset())

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


@pytest.fixture
async def rig(
    queues: Queues, local_sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    registry = CollectorRegistry()
    metrics = Metrics(registry)

    def hook(operation: str, result: str) -> None:
        metrics.sqs_requests.labels(operation, result).inc()

    async with (
        open_sqlite(tmp_path / "state.db") as store,
        open_queue(queues.queue_url, queues.dlq_url, region=queues.region, pool_size=8, hook=hook) as queue,
    ):
        stop = asyncio.Event()
        rig = Rig(queues, local_sqs.client(), store, queue, registry, metrics, Health(stall_after=60), stop)
        yield rig
        # A test that failed half-way may leave its worker running: end it before closing the queue.
        stop.set()
        for task in rig.tasks:
            task.cancel()
        await asyncio.gather(*rig.tasks, return_exceptions=True)


async def finish(rig: Rig, task: asyncio.Task[None], timeout: float = 15) -> None:
    rig.stop.set()
    await asyncio.wait_for(task, timeout)


async def test_valid_sis_event_is_applied_and_deleted(rig: Rig) -> None:
    task = rig.start()
    await rig.send(sis_event(batch=7, state="importing"))

    await rig.wait_for(lambda: rig.messages("deleted") == 1, "the message to be deleted")
    await finish(rig, task)

    (record,) = await rig.store.records()
    assert (record.sis_batch_id, record.state) == (7, State.IMPORTING)
    assert await rig.counts() == (0, 0)
    assert rig.sample("sis_consumer_events_total", kind="sis_batch_updated", result="applied") == 1


async def test_a_loop_without_health_handles_messages_but_vouches_for_nothing(rig: Rig) -> None:
    """The drop folder's loop: its polls must not keep /livez or the last-poll gauge (which page
    when the Live Events loop stalls) looking alive."""
    rig.health.last_poll -= 1000
    task = rig.start(watched=False)
    await rig.send(sis_event(batch=8, state="importing"))

    await rig.wait_for(lambda: rig.messages("deleted") == 1, "the message to be deleted")
    await finish(rig, task)

    assert rig.health.stalled_for() is not None
    assert not rig.health.sqs_ok
    assert rig.registry.get_sample_value("sis_consumer_last_poll_timestamp_seconds") == 0


async def test_malformed_body_goes_to_the_dlq_and_is_deleted(rig: Rig) -> None:
    task = rig.start()
    await rig.send("this is not { json")

    await rig.wait_for(lambda: rig.messages("dead_lettered") == 1, "the message to be dead-lettered")
    await finish(rig, task)

    assert await rig.counts() == (0, 0)
    response = await asyncio.to_thread(
        rig.raw.receive_message, QueueUrl=rig.queues.dlq_url, WaitTimeSeconds=1, MessageAttributeNames=["All"]
    )
    (dead,) = response["Messages"]
    assert dead["Body"] == "this is not { json"
    assert "JSON" in dead["MessageAttributes"]["sis_consumer_reason"]["StringValue"]


async def test_malformed_body_without_a_dlq_is_left_in_the_queue(rig: Rig) -> None:
    no_dlq = SqsQueue(rig.queue._client, rig.queues.queue_url, None, lambda op, result: None)
    task = rig.start(queue=no_dlq)
    await rig.send("this is not { json")

    await rig.wait_for(lambda: rig.messages("retried") >= 1, "the message to be given back")
    await finish(rig, task)

    assert rig.messages("deleted") == 0
    assert rig.messages("dead_lettered") == 0
    assert sum(await rig.counts()) == 1  # hidden for a backoff, then visible again for the redrive
    assert sum(await rig.counts(rig.queues.dlq_url)) == 0


async def test_sis_event_is_retried_not_deleted_while_the_store_is_full(rig: Rig) -> None:
    await rig.store_pragma("PRAGMA max_page_count = 1")
    task = rig.start()
    # A long user agent does not fit in the pages the file has: the insert needs a new one.
    await rig.send(sis_event(batch=9, user_agent="sis-uploader/" + "x" * 20_000))

    await rig.wait_for(lambda: rig.messages("retried") >= 1, "the message to be retried")

    assert rig.messages("deleted") == 0
    assert rig.sample(
        "sis_consumer_sqs_requests_total", operation="ChangeMessageVisibilityBatch", result="ok"
    )
    assert await rig.store.records() == []
    assert sum(await rig.counts()) == 1
    await finish(rig, task)


async def test_a_handled_message_is_retried_not_deleted_when_its_commit_cannot_be_made_durable(
    rig: Rig,
) -> None:
    async def disk_gone() -> None:
        raise StoreUnavailable("sqlite: cannot make the commits durable: [Errno 5] Input/output error")

    task = rig.start(durable=disk_gone)
    await rig.send(sis_event(batch=8, state="importing"))

    await rig.wait_for(lambda: rig.messages("retried") == 1, "the message given back")
    await finish(rig, task)

    assert rig.messages("deleted") == 0
    assert sum(await rig.counts()) == 1


async def test_sis_event_is_processed_once_the_store_has_room_again(rig: Rig) -> None:
    await rig.store_pragma("PRAGMA max_page_count = 1")
    task = rig.start()
    await rig.send(sis_event(batch=9, user_agent="sis-uploader/" + "x" * 20_000))
    await rig.wait_for(lambda: rig.messages("retried") >= 1, "the message to be retried")

    await rig.store_pragma("PRAGMA max_page_count = 1073741823")

    # It comes back after its backoff (10-11 s after the first receive).
    await rig.wait_for(lambda: rig.messages("deleted") == 1, "the message to be deleted", timeout=25)
    await finish(rig, task)
    assert [r.sis_batch_id for r in await rig.store.records()] == [9]
    assert await rig.counts() == (0, 0)


class GatedHandler(MessageHandler):
    """Slow work: waits for `release` before handling (the one stand-in these tests use)."""

    def __init__(self, store: SqliteStore, metrics: Metrics) -> None:
        super().__init__(store, metrics, SystemClock(), frozenset())
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.handled = 0

    async def handle(self, message: Message) -> Outcome:
        self.entered.set()
        await self.release.wait()
        self.handled += 1
        return await super().handle(message)


async def test_heartbeat_keeps_a_slow_message_hidden_past_its_visibility_timeout(rig: Rig) -> None:
    slow = GatedHandler(rig.store, rig.metrics)
    task = rig.start(handler=slow, visibility_timeout=2)
    await rig.send(sis_event(batch=11))
    await asyncio.wait_for(slow.entered.wait(), 15)

    # Watch for 5 s (2.5 visibility timeouts): nobody else may receive the message meanwhile.
    stolen: list[str] = []
    watch_until = time.monotonic() + 5
    while time.monotonic() < watch_until:
        response = await asyncio.to_thread(
            rig.raw.receive_message, QueueUrl=rig.queues.queue_url, WaitTimeSeconds=1, VisibilityTimeout=0
        )
        stolen += [m["Body"] for m in response.get("Messages", [])]
    assert stolen == []

    slow.release.set()
    await rig.wait_for(lambda: rig.messages("deleted") == 1, "the message to be deleted")
    await finish(rig, task)
    assert slow.handled == 1
    assert await rig.counts() == (0, 0)


async def test_sqs_errors_do_not_end_the_poll_loop(rig: Rig) -> None:
    missing = f"{rig.queues.endpoint_url}/123456789012/canvas-live-events-does-not-exist"

    def hook(operation: str, result: str) -> None:
        rig.metrics.sqs_requests.labels(operation, result).inc()

    broken = SqsQueue(rig.queue._client, missing, None, hook)
    task = rig.start(queue=broken)

    await rig.wait_for(lambda: rig.sqs_errors("ReceiveMessage") >= 2, "receive errors")
    seen = rig.sqs_errors("ReceiveMessage")
    await rig.wait_for(lambda: rig.sqs_errors("ReceiveMessage") > seen, "more receive errors")

    assert not task.done()
    assert not rig.health.sqs_ok
    await finish(rig, task, timeout=5)
    assert task.exception() is None


class WatchedQueue(SqsQueue):
    """The real queue, telling the test when a receive call is under way."""

    def __init__(self, queue: SqsQueue) -> None:
        super().__init__(queue._client, queue.queue_url, queue.dlq_url, queue._hook)
        self.receiving = asyncio.Event()
        self.receives = 0
        """Receive calls begun."""

    async def receive(self, *, max_messages: int, wait_seconds: int, visibility: int) -> list[Message]:
        self.receiving.set()
        self.receives += 1
        return await super().receive(
            max_messages=max_messages, wait_seconds=wait_seconds, visibility=visibility
        )


async def test_message_taken_by_an_in_flight_long_poll_after_stop_is_processed(rig: Rig) -> None:
    watched = WatchedQueue(rig.queue)
    task = rig.start(queue=watched, wait_seconds=3, visibility_timeout=30)
    await asyncio.wait_for(watched.receiving.wait(), 5)

    rig.stop.set()
    await rig.send(sis_event(batch=13))
    await asyncio.wait_for(task, 15)

    assert rig.messages("deleted") == 1
    assert [r.sis_batch_id for r in await rig.store.records()] == [13]
    assert await rig.counts() == (0, 0)


async def test_stopped_while_idle_no_poller_begins_another_long_poll(rig: Rig) -> None:
    """`run` returns once the long polls in flight end: it never waits for more than one more."""
    wait_seconds = 1
    watched = WatchedQueue(rig.queue)
    task = rig.start(queue=watched, wait_seconds=wait_seconds)
    await rig.wait_for(
        lambda: rig.sample("sis_consumer_sqs_requests_total", operation="ReceiveMessage", result="ok") >= 1,
        "a first poll",
    )
    begun = watched.receives

    await finish(rig, task, timeout=5 * wait_seconds)  # a deadline for a hang, not a measure

    assert watched.receives == begun
    assert rig.health.sqs_ok
