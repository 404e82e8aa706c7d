"""The daemon's log is for people: what Canvas does every night (redeliveries, states arriving late)
at debug and counted all the same; a failed import at warning."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.daemon import Daemon
from tests.support.live_events import sis_event
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
# In the order they arrive: a redelivery, then `created` after `importing` (late).
ARRIVALS = ["initializing", "initializing", "importing", "created", "failed"]


@pytest.fixture
def daemon(queues: Queues, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(queues, tmp_path, SIS_CONSUMER_LOG_LEVEL="debug").start()
    yield running
    running.close()


def test_redeliveries_and_late_states_log_at_debug_and_a_failure_at_warning(
    daemon: Daemon, local_sqs: LocalSqs, queues: Queues
) -> None:
    sqs = local_sqs.client()
    order = ["initializing", "created", "importing", "failed"]
    for n, state in enumerate(ARRIVALS, start=1):
        at = START + timedelta(minutes=order.index(state))
        body = sis_event(account_uuid=ACCOUNT, account_id=1, sis_batch_id=7, state=state, at=at)
        sqs.send_message(QueueUrl=queues.queue_url, MessageBody=body)
        wait_until(
            lambda n=n: daemon.sample("sis_consumer_events_total") == n,  # type: ignore[misc]
            timeout=20,
            what=f"the daemon to handle event {n} ({state})",
        )
    assert daemon.sample("sis_consumer_events_total", result="duplicate") == 1
    assert daemon.sample("sis_consumer_events_total", result="stale") == 1
    daemon.stop()

    handled = [(line["event"], line["level"]) for line in daemon.log_lines() if line.get("sis_batch_id") == 7]
    assert handled == [
        ("sis_batch.applied", "info"),
        ("sis_batch.duplicate", "debug"),
        ("sis_batch.applied", "info"),
        ("sis_batch.late_ignored", "debug"),
        ("sis_batch.applied", "warning"),
    ]
