"""Stopping the real daemon loses nothing and strands nothing."""

from __future__ import annotations

import functools
import signal
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

from consumer.sandbox.local_sqs import Queues
from tests.e2e.daemon import Daemon
from tests.e2e.test_daemon import send_all
from tests.live_events import lifecycle, other_event, sis_event
from tests.waiting import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
STATES = ["initializing", "created", "importing", "imported"]


def many_imports(n: int) -> list[str]:
    bodies: list[str] = []
    for batch in range(1, n + 1):
        events = lifecycle(
            account_uuid="acct-uuid-a", account_id=1, sis_batch_id=batch, states=STATES, start=START
        )
        bodies += [*events, events[-1], other_event("logged_in", batch)]
    return bodies


IMPORTS = 30
"""Enough for a drain to be under way when the signal lands. moto's server shares this process and
slows with depth: on a busy machine, twice as many did not drain within a minute."""
DRAINED = {"timeout": 90, "interval": 0.5}
"""A deadline for the rest of the queue to drain, polled gently (the poll costs moto CPU)."""


@functools.cache
def sqs_client(endpoint_url: str, region: str) -> SQSClient:
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)


def queue_counts(queues: Queues) -> tuple[int, int]:
    sqs = sqs_client(queues.endpoint_url, queues.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queues.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def finished_in_journal(db: Path) -> dict[int, int]:
    """How many committed transitions finished each import: the durable count."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT sis_batch_id, COUNT(*) FROM journal WHERE effects LIKE '%Finished%' GROUP BY sis_batch_id"
        ).fetchall()
    return dict(rows)


@pytest.fixture
def env(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> Queues:
    for key, value in queues.env().items():
        monkeypatch.setenv(key, value)
    return queues


@pytest.fixture
def daemons() -> Iterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        daemon.close()


def test_sigterm_mid_drain_exits_0_and_strands_nothing(
    env: Queues, tmp_path: Path, daemons: list[Daemon]
) -> None:
    bodies = many_imports(IMPORTS)
    send_all(env, bodies)
    first = Daemon(env, tmp_path, SIS_CONSUMER_VISIBILITY_TIMEOUT="300", SIS_CONSUMER_POLLERS="2")
    daemons.append(first)
    first.start()
    wait_until(lambda: first.sample("sis_consumer_messages_total") >= 20, what="the drain to start")

    first.signal(signal.SIGTERM)
    assert first.wait() == 0
    visible, hidden = queue_counts(env)
    assert hidden == 0, "a message was left hidden for its visibility timeout"
    assert visible > 0, "the drain finished before the signal: the test proved nothing"

    second = Daemon(env, tmp_path)
    daemons.append(second)
    second.start()
    wait_until(lambda: queue_counts(env) == (0, 0), **DRAINED, what="the rest drained")
    states = {i["sis_batch_id"]: i["state"] for i in second.imports()}
    assert states == dict.fromkeys(range(1, IMPORTS + 1), "imported")
    assert second.stop() == 0


def test_sigterm_during_a_long_poll_handles_and_deletes_what_it_returns(
    env: Queues, tmp_path: Path, daemons: list[Daemon]
) -> None:
    """A message that reaches a long poll already in flight when SIGTERM arrives is handled and
    deleted before the process exits: not left visible, and not hidden for its visibility timeout."""
    daemon = Daemon(env, tmp_path, SIS_CONSUMER_WAIT_TIME_SECONDS="5", SIS_CONSUMER_VISIBILITY_TIMEOUT="300")
    daemons.append(daemon)
    daemon.start()
    # The first (empty) polls have ended, so every poller is waiting in its next one.
    wait_until(lambda: daemon.sample("sis_consumer_sqs_requests_total", operation="ReceiveMessage") > 0)

    daemon.signal(signal.SIGTERM)
    wait_until(lambda: "shutdown.requested" in daemon.output(), what="the signal handled")
    send_all(
        env, [sis_event(account_uuid="acct-uuid-a", account_id=1, sis_batch_id=7, state="created", at=START)]
    )
    assert daemon.wait() == 0

    assert queue_counts(env) == (0, 0)
    assert [(i["sis_batch_id"], i["state"]) for i in daemon.imports()] == [(7, "created")]
    events = [line["event"] for line in daemon.log_lines()]
    assert events.index("shutdown.requested") < events.index("sis_batch.applied")


def test_second_signal_forces_exit(env: Queues, tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = Daemon(env, tmp_path, SIS_CONSUMER_WAIT_TIME_SECONDS="20")
    daemons.append(daemon)
    daemon.start()  # ready: the pollers' 20 s long polls are in flight
    daemon.signal(signal.SIGTERM)
    wait_until(lambda: "shutdown.draining" in daemon.output(), what="the drain to begin")
    daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=10) == 1
    assert "shutdown.forced" in daemon.output()
    assert "Traceback" not in daemon.output()


def test_sigkill_mid_drain_then_restart_counts_every_import_once(
    env: Queues, tmp_path: Path, daemons: list[Daemon]
) -> None:
    bodies = many_imports(IMPORTS)
    send_all(env, bodies)
    first = Daemon(env, tmp_path, SIS_CONSUMER_VISIBILITY_TIMEOUT="2", SIS_CONSUMER_POLLERS="2")
    daemons.append(first)
    first.start()
    wait_until(lambda: first.sample("sis_consumer_messages_total") >= 20, what="the drain to start")
    first.kill()
    assert queue_counts(env) != (0, 0), "the drain finished before the kill: the test proved nothing"

    second = Daemon(env, tmp_path, SIS_CONSUMER_VISIBILITY_TIMEOUT="2")
    daemons.append(second)
    second.start()
    wait_until(lambda: queue_counts(env) == (0, 0), **DRAINED, what="the queue drained after restart")
    states = {i["sis_batch_id"]: i["state"] for i in second.imports()}
    assert states == dict.fromkeys(range(1, IMPORTS + 1), "imported")
    assert finished_in_journal(second.db) == dict.fromkeys(range(1, IMPORTS + 1), 1)
    assert second.stop() == 0
