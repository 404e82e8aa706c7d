"""How the simulated Canvas's Live Events reach the queue: late, twice, out of order, or never.

Canvas posts an event after its transaction commits and does not wait for it (an in-process buffer),
so `emit` is synchronous and the sending happens in tasks this object owns. Events without a delay
go through one FIFO worker, in order; delayed events (jitter, or a plan's delay) get a task each
and may overtake. A failing publisher loses the event, as Canvas does when its endpoint is down.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.live_events import encode

Publish = Callable[[str], Awaitable[None]]
"""Sends one SQS message body (the event JSON)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Fate:
    """What a plan decided for one event; None leaves it to the knobs' rates."""

    lose: bool | None = None
    duplicate: bool | None = None
    extra_delay: float = 0.0


@dataclass(frozen=True, slots=True)
class Emitted:
    seq: int
    event: dict[str, Any]
    body: str
    dropped: bool
    copies: int
    delay: float
    emitted_at: datetime

    @property
    def state(self) -> str:
        return str(self.event["body"]["workflow_state"])


@dataclass(frozen=True, slots=True)
class Delivered:
    """One message that went out (a duplicate is a second `Delivered` with the same `seq`)."""

    seq: int
    event: dict[str, Any]
    body: str
    copy: int
    at: datetime

    @property
    def state(self) -> str:
        return str(self.event["body"]["workflow_state"])

    @property
    def sis_batch_id(self) -> int:
        return int(self.event["body"]["sis_batch_id"])


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    seq: int
    error: str


def _now() -> datetime:
    return datetime.now(UTC)


class EventDelivery:
    def __init__(self, publish: Publish | None, knobs: Knobs, rng: random.Random) -> None:
        self._publish = publish
        self._knobs = knobs
        self._rng = rng
        self.emitted: list[Emitted] = []
        self.published: list[Delivered] = []
        self.failures: list[DeliveryFailure] = []
        self._fifo: asyncio.Queue[Emitted] = asyncio.Queue()
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._pending = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def dropped(self) -> list[Emitted]:
        return [e for e in self.emitted if e.dropped]

    def start(self) -> None:
        self._worker = asyncio.create_task(self._run_fifo(), name="sandbox-events-fifo")

    async def close(self) -> None:
        """Cancel and await every sending task: undelivered events are lost, as in Canvas."""
        tasks = [*self._tasks, *([self._worker] if self._worker else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every emitted event is sent (or failed)."""
        async with asyncio.timeout(timeout):
            await self._idle.wait()

    def emit(self, event: dict[str, Any], fate: Fate = Fate()) -> Emitted:
        knobs = self._knobs
        dropped = fate.lose if fate.lose is not None else self._rng.random() < knobs.loss_rate
        twice = fate.duplicate if fate.duplicate is not None else self._rng.random() < knobs.duplicate_rate
        jitter = self._rng.uniform(0, knobs.delivery_jitter_seconds) if knobs.delivery_jitter_seconds else 0.0
        delay = knobs.scaled(jitter + fate.extra_delay)
        emitted = Emitted(
            seq=len(self.emitted),
            event=event,
            body=encode(event),
            dropped=dropped,
            copies=0 if dropped else 2 if twice else 1,
            delay=delay,
            emitted_at=_now(),
        )
        self.emitted.append(emitted)
        if dropped:
            return emitted
        self._pending += 1
        self._idle.clear()
        if delay > 0:
            task = asyncio.create_task(self._send_later(emitted), name=f"sandbox-event-{emitted.seq}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            self._fifo.put_nowait(emitted)
        return emitted

    async def _run_fifo(self) -> None:
        while True:
            emitted = await self._fifo.get()
            await self._send(emitted)

    async def _send_later(self, emitted: Emitted) -> None:
        await asyncio.sleep(emitted.delay)
        await self._send(emitted)

    async def _send(self, emitted: Emitted) -> None:
        try:
            for copy in range(emitted.copies):
                if self._publish is not None:
                    await self._publish(emitted.body)
                self.published.append(Delivered(emitted.seq, emitted.event, emitted.body, copy, _now()))
        except Exception as exc:  # a down endpoint loses the event; the sandbox keeps going
            log.warning("sandbox: could not publish event %d: %r", emitted.seq, exc)
            self.failures.append(DeliveryFailure(emitted.seq, repr(exc)))
        finally:
            self._pending -= 1
            if self._pending == 0:
                self._idle.set()
