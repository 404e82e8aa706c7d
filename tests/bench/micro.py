"""In-process micro-benchmark of the daemon's per-message work, without SQS.

Rates are events per CPU-second of this process (`time.process_time`, every thread): events per
second per core, less sensitive to other load on the machine than wall time. Each case runs
`repeat` times over the same bodies; the median is kept.

- `json.loads`: the baseline any consumer pays to look at a body;
- `decode`: `consumer.core.events.decode` (for other events: the fast reject path);
- `decode + apply`: decode, build the observation, `core.tracker.apply` against an in-memory dict;
- `handler`: `MessageHandler.handle` as the daemon runs it: decode, SQLite transaction on its
  thread, metrics, one log line per SIS event (logs rendered to /dev/null).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from prometheus_client import CollectorRegistry

from consumer.ack import Message
from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.events import OtherEvent, SisBatchEvent, decode
from consumer.core.tracker import ImportRecord, apply
from consumer.daemon.handler import MessageHandler, observation
from consumer.observability import logs as daemon_logging
from consumer.observability.metrics import Metrics
from tests.bench import corpus


@dataclass(frozen=True, slots=True)
class Case:
    kind: str
    """`other` or `sis`."""
    name: str
    events: int
    per_cpu_second: float
    per_event_us: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "case": self.name,
            "events": self.events,
            "events_per_cpu_second": round(self.per_cpu_second),
            "us_per_event": round(self.per_event_us, 2),
        }


def _rate(fn: Callable[[], None], events: int, repeat: int) -> tuple[float, float]:
    cpu: list[float] = []
    for _ in range(repeat):
        began = time.process_time()
        fn()
        cpu.append(time.process_time() - began)
    median = statistics.median(cpu)
    return events / median, median / events * 1e6


def _json_loads(bodies: Sequence[str]) -> Callable[[], None]:
    def run() -> None:
        for body in bodies:
            json.loads(body)

    return run


def _decode(bodies: Sequence[str]) -> Callable[[], None]:
    def run() -> None:
        for body in bodies:
            decode(body)

    return run


def _decode_apply(bodies: Sequence[str]) -> Callable[[], None]:
    now = datetime.now(UTC)

    def run() -> None:
        records: dict[tuple[str, int], ImportRecord] = {}
        for body in bodies:
            event = decode(body)
            if isinstance(event, SisBatchEvent):
                obs = observation(event)
                key = (obs.account, obs.sis_batch_id)
                records[key] = apply(records.get(key), obs, now).record
            elif not isinstance(event, OtherEvent):
                raise AssertionError(f"corpus message did not decode: {event}")

    return run


def _handler_rate(bodies: Sequence[str], repeat: int) -> tuple[float, float]:
    """The real handler, with a fresh SQLite store and registry for each repeat."""

    async def once(path: Path) -> float:
        async with open_sqlite(path) as store:
            handler = MessageHandler(store, Metrics(CollectorRegistry()), frozenset())
            messages = [Message(f"m{i}", f"r{i}", body) for i, body in enumerate(bodies)]
            began = time.process_time()
            for message in messages:
                await handler.handle(message)
            return time.process_time() - began

    cpu: list[float] = []
    logs_to_devnull()
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as tmp:
        for i in range(repeat):
            cpu.append(asyncio.run(once(Path(tmp) / f"state-{i}.db")))
    median = statistics.median(cpu)
    return len(bodies) / median, median / len(bodies) * 1e6


_devnull: list[TextIO] = []


def logs_to_devnull() -> None:
    """The daemon's own structlog set-up (JSON, redaction), rendered into /dev/null. Loggers cache
    their output file on first use, so the file stays open for the life of the process."""
    if _devnull:
        return
    _devnull.append(open(os.devnull, "w"))  # noqa: SIM115
    stdout, sys.stdout = sys.stdout, _devnull[0]
    try:
        daemon_logging.configure("info", "json")
    finally:
        sys.stdout = stdout


def run(events: int = 20_000, repeat: int = 5) -> list[Case]:
    mixed = corpus.build(events * 2, seed=11).bodies
    others = [b for b in mixed if '"sis_batch_' not in b][:events]
    sis = corpus.sis_only(events, seed=12, first_batch_id=200_000)
    cases: list[Case] = []
    for kind, bodies in (("other", others), ("sis", sis)):
        for name, fn in (
            ("json.loads (baseline)", _json_loads(bodies)),
            ("decode", _decode(bodies)),
            ("decode + apply", _decode_apply(bodies)),
        ):
            rate, us = _rate(fn, len(bodies), repeat)
            cases.append(Case(kind, name, len(bodies), rate, us))
        handler_bodies = bodies[: min(len(bodies), 5_000)]
        rate, us = _handler_rate(handler_bodies, max(1, repeat // 2))
        cases.append(Case(kind, "handler (SQLite, metrics, log)", len(handler_bodies), rate, us))
    return cases
