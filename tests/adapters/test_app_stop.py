"""How the daemon's run ends (`app._run_until_stopped`), with a real Worker on moto's SQS: a crash
is a failure exit code, and a stop fits `SIS_CONSUMER_SHUTDOWN_GRACE` however slow the batches."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from consumer.ack import Message
from consumer.adapters.sqs import SqsQueue
from consumer.daemon.app import CRASHED_EXIT, FORCED_EXIT, Signals, _run_until_stopped
from consumer.daemon.worker import PollSettings, Worker
from consumer.observability.http import Health
from tests.support.live_events import sis_event
from tests.support.worker_rig import GatedHandler, Rig


class BrokenQueue(SqsQueue):
    """The real queue, with a bug in deleting (the one stand-in here)."""

    def __init__(self, queue: SqsQueue) -> None:
        super().__init__(queue._client, queue.queue_url, queue.dlq_url, queue._hook)

    async def delete(self, messages: Sequence[Message]) -> list[Message]:
        raise RuntimeError("a bug in the queue adapter")


def worker_for(rig: Rig, queue: SqsQueue, handler: GatedHandler | None = None) -> Worker:
    settings = PollSettings(pollers=2, wait_seconds=1, visibility_timeout=30)
    return Worker(queue, handler or rig.handler(), settings, rig.metrics, Health(stall_after=60))


async def test_a_worker_that_crashes_ends_the_run_with_a_failure_exit_code(rig: Rig) -> None:
    worker = worker_for(rig, BrokenQueue(rig.queue))
    await rig.send(sis_event(sis_batch_id=21))

    code = await asyncio.wait_for(_run_until_stopped(worker, [], Signals(), grace=5), 30)

    assert code == CRASHED_EXIT != 0


async def test_a_stop_ends_within_the_grace_even_when_a_batch_never_settles(rig: Rig) -> None:
    stuck = GatedHandler(rig.store, rig.metrics)  # never released
    worker = worker_for(rig, rig.queue, stuck)
    signals = Signals()
    await rig.send(sis_event(sis_batch_id=22))
    run = asyncio.create_task(_run_until_stopped(worker, [], signals, grace=2))
    await asyncio.wait_for(stuck.entered.wait(), 15)
    loop = asyncio.get_running_loop()

    signals.stop.set()
    stopped_at = loop.time()
    code = await asyncio.wait_for(run, 30)

    assert code == FORCED_EXIT
    assert loop.time() - stopped_at < 2 + 1  # the grace, and a second of slack for a loaded machine
