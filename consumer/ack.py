"""The ack contract: a received message, what handling it decided, and the retry schedule.

The handler decides `Ack | Retry(delay) | DeadLetter(reason)`; only the worker turns a decision
into SQS calls. Both sides, and the queue port, share these types from here.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, Protocol


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    """When ReceiveMessage returned it: the handler's "now" (first seen, delivery latency)."""


@dataclass(frozen=True, slots=True)
class Ack:
    pass


@dataclass(frozen=True, slots=True)
class Retry:
    delay_seconds: int


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str


Outcome = Ack | Retry | DeadLetter
ACK = Ack()


class Handler(Protocol):
    """What the worker hands each message to: Live Events, or the drop folder's S3 notifications."""

    async def handle(self, message: Message) -> Outcome: ...


RETRY_FIRST: Final = 10.0
RETRY_CAP: Final = 900.0
RETRY_JITTER: Final = 0.1


def retry_floor(receive_count: int) -> float:
    """The least time a message stays hidden after its `receive_count`th receive failed for a
    retryable reason: 10 s, doubling, up to 15 min."""
    return min(RETRY_CAP, RETRY_FIRST * 2.0 ** (min(max(receive_count, 1), 64) - 1))


def retry_delay(receive_count: int, rand: Callable[[], float] = random.random) -> int:
    """The floor plus up to a tenth more: enough to spread messages that failed together, and
    never less, so the floors tell how long a queue's `maxReceiveCount` rides out an outage."""
    return round(retry_floor(receive_count) * (1.0 + RETRY_JITTER * rand()))


def ride_out_seconds(max_receive_count: int) -> float:
    """How long after the first receive the last one a queue allows comes, at the earliest: the
    store outage a redrive policy of `max_receive_count` survives without dead-lettering."""
    return sum(retry_floor(n) for n in range(1, max_receive_count))
