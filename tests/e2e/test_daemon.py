"""The real `sis-consumer run` process against moto's SQS server: the whole message path."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest

from consumer.sandbox.local_sqs import Queues
from tests.support.daemon import Daemon
from tests.support.live_events import LEAKED_TOKEN, lifecycle, other_event, sis_event, sns_wrapped
from tests.support.queue_state import queue_counts, send_all
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
A, B = "acct-uuid-a", "acct-uuid-b"
MALFORMED = [
    "this is not json",
    "[1, 2, 3]",
    sis_event(account_uuid=A, account_id=1, sis_batch_id=999, state="initializing", at=START).replace(
        '"initializing"', '"half_done"'
    ),
]
IMPORTS = {
    (A, 1, 101): ["initializing", "created", "importing", "imported"],
    (A, 1, 102): ["initializing", "created", "importing", "imported_with_messages"],
    (B, 2, 201): ["initializing", "created", "importing", "failed"],
    (B, 2, 202): ["initializing", "created", "importing", "imported", "restoring", "restored"],
    (A, 1, 103): ["initializing", "created"],
}


def corpus() -> tuple[list[str], int]:
    """Every import's events, some duplicated, shuffled among other Live Events and bad messages."""
    rng = random.Random(7)
    sis: list[str] = []
    for (uuid, account_id, batch), states in IMPORTS.items():
        events = lifecycle(
            account_uuid=uuid,
            account_id=account_id,
            sis_batch_id=batch,
            states=states,
            start=START,
            url_token=LEAKED_TOKEN,
        )
        sis += events + [e for i, e in enumerate(events) if i % 3 == 1]
    sis.append(sns_wrapped(sis[1]))
    others = [
        other_event(rng.choice(["logged_in", "asset_accessed", "submission_created"]), n) for n in range(20)
    ]
    bodies = sis + others + MALFORMED
    rng.shuffle(bodies)
    return bodies, len(others)


def dlq_bodies(queues: Queues) -> list[str]:
    sqs = boto3.client("sqs", endpoint_url=queues.endpoint_url, region_name=queues.region)
    found: list[str] = []
    for _ in range(5):
        response = sqs.receive_message(QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        found += [m["Body"] for m in response.get("Messages", [])]
    return found


@pytest.fixture
def drained(
    queues: Queues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Daemon, Queues, int]]:
    for key, value in queues.env().items():
        monkeypatch.setenv(key, value)
    bodies, n_other = corpus()
    send_all(queues, bodies)
    # One poller: the counts below are exact only if each message is delivered once. moto's
    # ReceiveMessage takes no lock, so on a busy machine two concurrent long polls can both be
    # handed the same message (SQS is at-least-once too); the daemon then rightly logs and counts
    # a second delivery, which these tests would read as a miscount.
    # At debug: redeliveries and late states log there, and each SIS message has its line.
    daemon = Daemon(queues, tmp_path, SIS_CONSUMER_POLLERS="1", SIS_CONSUMER_LOG_LEVEL="debug")
    try:
        daemon.start()
        wait_until(
            lambda: daemon.sample("sis_consumer_messages_total") >= len(bodies),
            timeout=60,
            what=f"{len(bodies)} messages settled",
        )
        wait_until(lambda: daemon.sample("canvas_sis_imports_in_progress") == 1, what="gauges refreshed")
        yield daemon, queues, n_other
    finally:
        daemon.close()


def test_every_import_ends_in_its_final_state(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, _, _ = drained
    states = {(i["account"], i["sis_batch_id"]): i["state"] for i in daemon.imports()}
    assert states == {(uuid, batch): steps[-1] for (uuid, _, batch), steps in IMPORTS.items()}
    daemon.stop()


def test_imports_json_has_the_public_fields(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, _, _ = drained
    restored = next(i for i in daemon.imports() if i["sis_batch_id"] == 202)
    assert restored["account"] == B
    assert restored["account_id"] == "2"
    assert restored["outcome"] == "imported"
    assert restored["origin"] == "external"
    assert restored["created_at"] == "2026-11-24T02:00:00Z"
    assert restored["finished_at"] == "2026-11-24T02:01:30Z"
    assert restored["duration_seconds"] == 90.0
    assert restored["stuck"] is None
    daemon.stop()


def test_finished_imports_are_counted_once_by_state(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, _, _ = drained
    finished = "canvas_sis_imports_finished_total"
    assert daemon.sample(finished, state="imported") == 2
    assert daemon.sample(finished, state="imported_with_messages", account=A) == 1
    assert daemon.sample(finished, state="failed", account=B) == 1
    assert daemon.sample(finished) == 4
    assert daemon.sample("canvas_sis_import_duration_seconds_count") == 4
    daemon.stop()


def test_event_results_are_counted(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, _, n_other = drained
    events = "sis_consumer_events_total"
    distinct = sum(len(s) for s in IMPORTS.values())
    first_sightings = daemon.sample(events, result="applied") + daemon.sample(events, result="stale")
    assert first_sightings == distinct
    assert daemon.sample(events, result="duplicate") == daemon_sis_messages() - distinct
    assert daemon.sample(events, kind="other", result="ignored") == n_other
    assert daemon.sample(events, result="invalid") == len(MALFORMED)
    assert daemon.sample("canvas_sis_imports_in_progress", account=A, state="created") == 1
    daemon.stop()


def test_malformed_messages_reach_the_dlq_and_leave_the_queue(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, queues, _ = drained
    assert daemon.stop() == 0
    assert sorted(dlq_bodies(queues)) == sorted(MALFORMED)
    assert queue_counts(queues) == (0, 0)


def test_a_token_in_metadata_url_appears_nowhere(drained: tuple[Daemon, Queues, int]) -> None:
    daemon, _, _ = drained
    metrics_text = repr(daemon.metrics())
    listing = json.dumps(daemon.imports())
    daemon.stop()
    assert LEAKED_TOKEN not in daemon.output()
    assert LEAKED_TOKEN not in metrics_text
    assert LEAKED_TOKEN not in listing
    for path in daemon.workdir.glob("state.db*"):
        assert LEAKED_TOKEN.encode() not in path.read_bytes(), path


def test_one_log_line_per_sis_message(drained: tuple[Daemon, Queues, int]) -> None:
    """One line per SIS message, at debug (duplicates and late states are debug lines)."""
    daemon, _, _ = drained
    daemon.stop()
    lines = [line for line in daemon.log_lines() if str(line["event"]).startswith("sis_batch.")]
    assert len(lines) == daemon_sis_messages()
    assert all({"sis_batch_id", "account", "message_id", "state", "origin"} <= set(line) for line in lines)


def daemon_sis_messages() -> int:
    bodies, n_other = corpus()
    return len(bodies) - n_other - len(MALFORMED)
