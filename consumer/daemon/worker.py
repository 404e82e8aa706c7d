"""The poll loop: receive -> handle -> settle (delete, retry later, or dead-letter).

Shutdown is two-phase (docs/architecture.md, "Shutdown"): when `stop` is set, no poller starts a
new receive, but a long poll already in flight is allowed to finish and whatever it returns is
handled and acked — an abandoned long poll can still be handed messages that would then stay
hidden for the visibility timeout. Settling a batch is shielded from cancellation.

One loop serves every queue the daemon reads: the Live Events queue, and the drop folder's intake
queue when there is one, each with its own `Handler`. Only the Live Events loop is given the
`Health` the probes read: its polls are what `/livez` and the last-poll gauge vouch for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from consumer.ack import Ack, DeadLetter, Handler, Message, Outcome, Retry, retry_delay
from consumer.core.backoff import backoff_seconds
from consumer.daemon.loops import pause
from consumer.errors import QueueError, StoreUnavailable
from consumer.observability.http import Health
from consumer.observability.metrics import Metrics
from consumer.ports import Queue

log = structlog.get_logger("sis_consumer.worker")


@dataclass(frozen=True, slots=True)
class PollSettings:
    pollers: int = 4
    wait_seconds: int = 20
    visibility_timeout: int = 60
    max_messages: int = 10
    queue: str = "live_events"
    """Names the queue in log lines."""


class Worker:
    def __init__(
        self,
        queue: Queue,
        handler: Handler,
        settings: PollSettings,
        metrics: Metrics,
        health: Health | None,
        durable: Callable[[], Awaitable[None]] = lambda: _nothing(),
    ) -> None:
        self._queue = queue
        self._durable = durable
        self._handler = handler
        self._settings = settings
        self._metrics = metrics
        self._health = health
        self._batches: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set and every in-flight batch is settled.

        Cancelled (the grace is running out), it returns at once: batches keep settling on their
        own until `settle` says how long they may.
        """
        async with asyncio.TaskGroup() as group:
            for n in range(self._settings.pollers):
                group.create_task(self._poll(n, stop), name=f"poller-{n}")

    async def settle(self, deadline: float) -> int:
        """Let the batches in hand settle until `deadline` (event loop time), then cancel what is
        left: its messages come back after their visibility timeout. Returns how many were cut."""
        if not self._batches:
            return 0
        loop = asyncio.get_running_loop()
        _, left = await asyncio.wait(set(self._batches), timeout=max(0.0, deadline - loop.time()))
        for batch in left:
            batch.cancel()
        await asyncio.gather(*left, return_exceptions=True)
        if left:
            log.warning("shutdown.batches_abandoned", count=len(left))
        return len(left)

    async def _poll(self, n: int, stop: asyncio.Event) -> None:
        failures = 0
        while not stop.is_set():
            try:
                messages = await self._queue.receive(
                    max_messages=self._settings.max_messages,
                    wait_seconds=self._settings.wait_seconds,
                    visibility=self._settings.visibility_timeout,
                )
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the loop never dies: back off and try again
                failures += 1
                delay = backoff_seconds(failures, base=0.5, cap=30.0)
                if self._health is not None:
                    self._health.polled()
                    self._health.sqs_result(str(exc) if isinstance(exc, QueueError) else repr(exc))
                log.warning(
                    "poll.failed",
                    queue=self._settings.queue,
                    poller=n,
                    error=str(exc),
                    retry_in_seconds=round(delay, 2),
                )
                await pause(stop, delay)
                continue
            failures = 0
            if self._health is not None:
                self._health.polled()
                self._health.sqs_result(None)
                self._metrics.last_poll.set_to_current_time()
            if messages:
                batch = asyncio.create_task(self._process(messages))
                self._batches.add(batch)
                batch.add_done_callback(self._batches.discard)
                await asyncio.shield(batch)

    async def _process(self, messages: Sequence[Message]) -> None:
        outcomes: list[tuple[Message, Outcome]] = []
        pending = list(messages)
        async with self._heartbeat(pending):
            for message in messages:
                outcomes.append((message, await self._handler.handle(message)))
                pending.remove(message)
        await self._settle(outcomes)

    async def _settle(self, outcomes: Sequence[tuple[Message, Outcome]]) -> None:
        acks = [m for m, o in outcomes if isinstance(o, Ack)]
        retries = [(m, o.delay_seconds) for m, o in outcomes if isinstance(o, Retry)]
        dead = [(m, o.reason) for m, o in outcomes if isinstance(o, DeadLetter)]

        not_copied = set(id(m) for m in await self._queue.dead_letter(dead))
        copied = [m for m, _ in dead if id(m) not in not_copied]
        if not_copied:
            # No DLQ configured, or the copy failed: back off and leave them to the queue's redrive.
            retries += [(m, retry_delay(m.receive_count)) for m, _ in dead if id(m) in not_copied]
            log.warning("message.left_for_redrive", count=len(not_copied))

        if acks:
            try:
                await self._durable()  # never delete a message whose commit a crash could still lose
            except StoreUnavailable as exc:
                log.warning("message.not_durable", error=str(exc), count=len(acks))
                retries += [(m, retry_delay(m.receive_count)) for m in acks]
                acks = []
        failed = await self._queue.delete(acks + copied)
        if failed:
            # They come back after the visibility timeout and are recognised as duplicates.
            log.warning("message.delete_failed", message_ids=[m.message_id for m in failed])
        self._count("deleted", len(acks) - sum(1 for m in failed if m in acks))
        self._count("dead_lettered", len(copied))
        if retries:
            unchanged = await self._queue.change_visibility(retries)
            if unchanged:
                log.warning("message.visibility_failed", message_ids=[m.message_id for m in unchanged])
        self._count("retried", len(retries))

    def _count(self, outcome: str, n: int) -> None:
        if n:
            self._metrics.messages.labels(outcome).inc(n)

    @contextlib.asynccontextmanager
    async def _heartbeat(self, pending: list[Message]) -> AsyncIterator[None]:
        """Keep slow work's messages hidden: extend their visibility every half timeout.

        Armed with a timer, not a task: almost every batch is done long before the first beat.
        """
        visibility = self._settings.visibility_timeout
        beats: list[asyncio.Task[None]] = []

        async def beat() -> None:
            while pending:
                await self._queue.change_visibility([(m, visibility) for m in pending])
                log.info("message.heartbeat", count=len(pending), visibility_seconds=visibility)
                await asyncio.sleep(visibility / 2)

        timer = asyncio.get_running_loop().call_later(
            visibility / 2, lambda: beats.append(asyncio.create_task(beat()))
        )
        try:
            yield
        finally:
            timer.cancel()
            for task in beats:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


async def _nothing() -> None:
    return None
