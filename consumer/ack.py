"""The ack contract: a received message, what handling it decided, and the retry schedule.

The handler decides `Ack | Retry(delay) | DeadLetter(reason)`; only the worker turns a decision
into SQS calls. Both sides, and the queue port, share these types from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from consumer.core.backoff import backoff_seconds


@dataclass(frozen=True, slots=True)
class Message:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int = 1


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


def retry_delay(receive_count: int) -> int:
    """Back off a message that failed for a retryable reason, from 5 s up to 15 min."""
    return max(1, round(backoff_seconds(receive_count, base=10.0, cap=900.0)))
