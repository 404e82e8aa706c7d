"""What the DynamoDB store costs per message: requests, by kind of message and by operation.

The real `MessageHandler` with a DynamoDB store on the local DynamoDB (moto's server in its own
process), over the bench corpus: other Live Events and SIS events of whole import lifecycles, some
delivered twice. Requests are counted with the store's own request hook, the one behind
`sis_consumer_store_requests_total`. Times on moto say nothing of AWS, so only counts are reported.
"""

from __future__ import annotations

import asyncio
import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.ack import Message
from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.core.events import SisBatchEvent, decode
from consumer.daemon.handler import MessageHandler
from consumer.observability.metrics import Metrics
from consumer.sandbox.local_sqs import REGION
from tests.bench import corpus
from tests.bench.micro import logs_to_devnull
from tests.support.dynamodb import LocalDynamoDB, create_table, dynamodb_env, environment, new_table_name


@dataclass
class StoreCost:
    other_messages: int = 0
    other_requests: int = 0
    sis_requests: list[int] = field(default_factory=list)
    """Requests per SIS event, in arrival order."""
    by_kind: dict[str, list[int]] = field(default_factory=dict)
    """Requests of an import's first event, of its later events, and of redeliveries."""
    operations: Counter[str] = field(default_factory=Counter)

    @property
    def per_sis_event(self) -> float:
        return sum(self.sis_requests) / max(1, len(self.sis_requests))

    def as_dict(self) -> dict[str, Any]:
        return {
            "other_messages": self.other_messages,
            "requests_per_other_message": self.other_requests / max(1, self.other_messages),
            "sis_events": len(self.sis_requests),
            "requests_per_sis_event": round(self.per_sis_event, 3),
            "requests_per_sis_event_median": statistics.median(self.sis_requests) if self.sis_requests else 0,
            "requests_per_sis_event_by_kind": {k: round(sum(v) / len(v), 3) for k, v in self.by_kind.items()},
            "operations": dict(self.operations),
        }


def run(messages: int = 4_000) -> StoreCost:
    logs_to_devnull()
    bodies = corpus.build(messages, seed=21).bodies
    with LocalDynamoDB() as server, environment(dynamodb_env(server)):
        return asyncio.run(_measure(bodies))


async def _measure(bodies: list[str]) -> StoreCost:
    table = new_table_name()
    await create_table(table)
    cost = StoreCost()
    calls: list[str] = []
    async with open_dynamodb(
        table, region=REGION, owner="bench", hook=lambda op, _result: calls.append(op)
    ) as store:
        handler = MessageHandler(store, Metrics(CollectorRegistry()), frozenset())
        for i, body in enumerate(bodies):
            before = len(calls)
            await handler.handle(Message(f"m{i}", f"r{i}", body))
            used = len(calls) - before
            cost.operations.update(calls[before:])
            if isinstance(decode(body), SisBatchEvent):
                cost.sis_requests.append(used)
            else:
                cost.other_messages += 1
                cost.other_requests += used
    _split_by_kind(cost, bodies)
    return cost


def _split_by_kind(cost: StoreCost, bodies: list[str]) -> None:
    """Requests of first sightings, later events and redeliveries: replayed from the corpus order."""
    seen: set[tuple[str, int, str]] = set()
    known: set[tuple[str, int]] = set()
    sis = [e for e in (decode(b) for b in bodies) if isinstance(e, SisBatchEvent)]
    for event, used in zip(sis, cost.sis_requests, strict=True):
        key = (event.account, event.sis_batch_id)
        if (event.account, event.sis_batch_id, event.state.value) in seen:
            kind = "redelivered"
        elif key not in known:
            kind = "first event of an import"
        else:
            kind = "later event"
        seen.add((event.account, event.sis_batch_id, event.state.value))
        known.add(key)
        cost.by_kind.setdefault(kind, []).append(used)
