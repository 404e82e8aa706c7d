"""The Worker and MessageHandler in-process, against moto's SQS server and a real SQLite store."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from consumer.ack import Message
from consumer.adapters.sqs import SqsQueue
from consumer.core.tracker import State
from consumer.errors import StoreUnavailable
from tests.support.live_events import sis_event
from tests.support.worker_rig import GatedHandler, Rig

if TYPE_CHECKING:
    pass


async def finish(rig: Rig, task: asyncio.Task[None], timeout: float = 15) -> None:
    rig.stop.set()
    await asyncio.wait_for(task, timeout)


async def test_valid_sis_event_is_applied_and_deleted(rig: Rig) -> None:
    task = rig.start()
    await rig.send(sis_event(sis_batch_id=7, state="importing"))

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
    await rig.send(sis_event(sis_batch_id=8, state="importing"))

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
    await rig.send(sis_event(sis_batch_id=9, user_agent="sis-uploader/" + "x" * 20_000))

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
    await rig.send(sis_event(sis_batch_id=8, state="importing"))

    await rig.wait_for(lambda: rig.messages("retried") == 1, "the message given back")
    await finish(rig, task)

    assert rig.messages("deleted") == 0
    assert sum(await rig.counts()) == 1


async def test_sis_event_is_processed_once_the_store_has_room_again(rig: Rig) -> None:
    await rig.store_pragma("PRAGMA max_page_count = 1")
    task = rig.start()
    await rig.send(sis_event(sis_batch_id=9, user_agent="sis-uploader/" + "x" * 20_000))
    await rig.wait_for(lambda: rig.messages("retried") >= 1, "the message to be retried")

    await rig.store_pragma("PRAGMA max_page_count = 1073741823")

    # It comes back after its backoff (10-11 s after the first receive).
    await rig.wait_for(lambda: rig.messages("deleted") == 1, "the message to be deleted", timeout=25)
    await finish(rig, task)
    assert [r.sis_batch_id for r in await rig.store.records()] == [9]
    assert await rig.counts() == (0, 0)


async def test_heartbeat_keeps_a_slow_message_hidden_past_its_visibility_timeout(rig: Rig) -> None:
    slow = GatedHandler(rig.store, rig.metrics)
    task = rig.start(handler=slow, visibility_timeout=2)
    await rig.send(sis_event(sis_batch_id=11))
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

    broken = SqsQueue(rig.queue._client, missing, None, rig.metrics.record_sqs_request)
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
    await rig.send(sis_event(sis_batch_id=13))
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
