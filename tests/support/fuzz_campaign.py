"""One fuzz campaign: bodies through `decode` and the real `MessageHandler` with a real SQLite store.

Every body must end in exactly one of the results the daemon counts — applied, duplicate, stale,
ignored, rejected or invalid — and in an ack or a dead-letter with a reason, never an exception or
a retry (the store is healthy). What breaks that rule is collected as a `Problem`, not raised, so
that one run reports every kind of failure it found.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import structlog
from prometheus_client import CollectorRegistry
from prometheus_client import Counter as Counter_

from consumer.ack import Ack, DeadLetter, Message, Outcome
from consumer.adapters.sqlite_schema import BUSY_SECONDS, connect
from consumer.adapters.store_sqlite import SqliteStore
from consumer.core.events import OtherEvent, SisBatchEvent, Undecodable, decode
from consumer.daemon import handler as handler_module
from consumer.daemon.handler import MessageHandler
from consumer.observability.logs import processors
from consumer.observability.metrics import Metrics
from tests.support.fuzz_bodies import ACCOUNTS, START

ACKED = frozenset({"applied", "duplicate", "stale", "ignored", "rejected"})
LEAKED = "7~FuzzTokenNeverLogged"
NOW = START + timedelta(days=2)


@dataclass(frozen=True, slots=True)
class Problem:
    index: int
    body: str
    what: str


class CountedEvents:
    """`sis_consumer_events_total`, telling the campaign which label set each body moved."""

    def __init__(self, counter: Counter_, counted: list[tuple[str, str]]) -> None:
        self._counter = counter
        self._counted = counted

    def labels(self, kind: str, result: str) -> _CountedChild:
        return _CountedChild(self._counter.labels(kind, result), (kind, result), self._counted)


@dataclass(frozen=True, slots=True)
class _CountedChild:
    child: Counter_
    key: tuple[str, str]
    counted: list[tuple[str, str]]

    def inc(self, amount: float = 1) -> None:
        self.counted.append(self.key)
        self.child.inc(amount)


class LogSink:
    """Where the handler's log lines go: encoded as stdout would, checked for the token, dropped."""

    def __init__(self) -> None:
        self.lines = 0
        self.leaks = 0

    def write(self, text: str) -> int:
        text.encode("utf-8")  # what a UTF-8 stdout does: a lone surrogate would raise here
        self.lines += text.count("\n")
        self.leaks += LEAKED in text
        return len(text)

    def flush(self) -> None:
        pass


@dataclass
class Campaign:
    """Open with `with Campaign(tmp_path) as c:`; `c.run(body)` for each body."""

    directory: Path
    tally: Counter[str] = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    sink: LogSink = field(default_factory=LogSink)

    def __enter__(self) -> Self:
        self._loop = asyncio.new_event_loop()
        # As the daemon opens it: no checkpoint inside a transaction's commit (`checkpoint` below).
        conn = connect(self.directory / "state.db", busy_seconds=BUSY_SECONDS, autocheckpoint=False)
        self.store = SqliteStore(conn, executor=None, owner="fuzz")  # type: ignore[arg-type]
        self._conn = conn
        self.registry = CollectorRegistry()
        metrics = Metrics(self.registry)
        metrics.prime(ACCOUNTS)
        self.counted: list[tuple[str, str]] = []
        metrics.events = CountedEvents(metrics.events, self.counted)  # type: ignore[assignment]
        self._open = MessageHandler(self.store, metrics, frozenset())
        self._strict = MessageHandler(self.store, metrics, frozenset(ACCOUNTS[:2]))
        # The real processor chain (redaction, JSON), into a sink instead of the test's stdout.
        logger = structlog.wrap_logger(
            structlog.PrintLogger(self.sink),  # type: ignore[arg-type]
            processors=processors("json"),
            wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        )
        self._saved_log = handler_module.log
        handler_module.log = logger
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        handler_module.log = self._saved_log
        self._conn.close()
        self._loop.close()

    def loop_records(self) -> int:
        """How many imports the store reads back (every row must still decode)."""
        return len(self._loop.run_until_complete(self.store.records()))

    def checkpoint(self) -> None:
        """What the daemon's maintenance thread does now and then: fold the WAL into the file."""
        self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def run(self, index: int, body: str, strict: bool = False) -> None:
        try:
            decoded = decode(body)
        except BaseException as exc:
            self._problem(index, body, f"decode raised {exc!r}")
            return
        self.counted.clear()
        handler = self._strict if strict else self._open
        try:
            outcome = _complete(handler.handle(Message(f"m-{index}", "r", body, received_at=NOW)))
        except BaseException as exc:
            self._problem(index, body, f"handle raised {exc!r}")
            return
        self._check(index, body, decoded, outcome, list(self.counted))

    def _check(
        self,
        index: int,
        body: str,
        decoded: SisBatchEvent | OtherEvent | Undecodable,
        outcome: Outcome,
        counted: list[tuple[str, str]],
    ) -> None:
        if len(counted) != 1:
            self._problem(index, body, f"counted {counted} instead of once")
            return
        ((kind, result),) = counted
        self.tally[result] += 1
        if isinstance(outcome, DeadLetter):
            if result != "invalid" or not outcome.reason:
                self._problem(index, body, f"dead-lettered as {result} with reason {outcome.reason!r}")
        elif not isinstance(outcome, Ack) or result not in ACKED:
            self._problem(index, body, f"{outcome!r} counted {result}")
        expected_kind = {
            SisBatchEvent: getattr(decoded, "name", None),
            OtherEvent: "other",
            Undecodable: getattr(decoded, "event_name", None) or "other",
        }[type(decoded)]
        if kind != expected_kind:
            self._problem(index, body, f"counted under kind {kind}, expected {expected_kind}")

    def _problem(self, index: int, body: str, what: str) -> None:
        self.problems.append(Problem(index, body[:300], what))


def _complete(coroutine: Coroutine[Any, Any, Outcome]) -> Outcome:
    """Run a coroutine that never waits (the SQLite store runs its transactions inline) without
    the cost of an event loop round per body; one that does wait is a finding of its own."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        result: Outcome = done.value
        return result
    coroutine.close()
    raise AssertionError("the handler waited on something: the SQLite store never should")
