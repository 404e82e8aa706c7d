"""Three real `sis-consumer run` replicas on one queue and one DynamoDB table, the leader SIGKILLed
mid-drain and restarted: every import ends right, every finish is counted once, one leader at a time."""

from __future__ import annotations

import asyncio
import json
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.canvas_thread import CanvasThread
from tests.support.daemon import Daemon
from tests.support.dynamodb import LocalDynamoDB, create_table, dynamodb_env, environment, new_table_name
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

IMPORTS = 52
LEASE = 4.0
KNOBS = Knobs(
    seed=11,
    queue_seconds=0.0,
    importing_seconds=0.02,
    cleanup_seconds=0.0,
    errors_attachment_seconds=0.0,
    duplicate_rate=0.5,
    delivery_jitter_seconds=0.05,
    failed_rate=0.2,
    warning_rate=0.2,
)
"""Fast imports of mixed outcomes; half the events delivered twice, in a jittered order."""


@pytest.fixture
def table(local_dynamodb: LocalDynamoDB) -> str:
    name = new_table_name()
    with environment(dynamodb_env(local_dynamodb)):
        asyncio.run(create_table(name))
    return name


@pytest.fixture
def canvas(local_sqs: LocalSqs) -> Iterator[CanvasThread]:
    queues = local_sqs.create_queues(max_receive_count=50)
    thread = CanvasThread(queues, KNOBS, proxy=True).start()
    yield thread
    thread.close()


def depth(local_sqs: LocalSqs, queues: Queues) -> int:
    sqs = local_sqs.client()
    attributes = sqs.get_queue_attributes(
        QueueUrl=queues.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def finish_claims(local_dynamodb: LocalDynamoDB, table: str) -> dict[int, list[str]]:
    """Per import, the daemons that claimed (counted) its finish, read from the table's outbox."""
    client = local_dynamodb.client()
    claims: dict[int, list[str]] = {}
    for page in client.get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            if item.get("kind", {}).get("S") != "import":
                continue
            for entry in item.get("outbox", {}).get("M", {}).values():
                if "finished" in entry["M"]["effects"]["S"]:
                    by = entry["M"].get("by", {}).get("S", "nobody")
                    claims.setdefault(int(item["sis_batch_id"]["N"]), []).append(by)
    return claims


def instance(daemon: Daemon) -> str:
    return next(str(line["instance"]) for line in daemon.log_lines() if line["event"] == "daemon.started")


def logged_at(daemon: Daemon, event: str) -> datetime | None:
    found = [line for line in daemon.log_lines() if line["event"] == event]
    return datetime.fromisoformat(found[0]["timestamp"]) if found else None


def test_replicas_share_one_table_count_each_finish_once_and_fail_over_within_two_leases(
    canvas: CanvasThread, local_sqs: LocalSqs, local_dynamodb: LocalDynamoDB, table: str, tmp_path: Path
) -> None:
    batches = [canvas.start_import() for _ in range(IMPORTS)]
    canvas.wait(
        "every import finished in Canvas",
        lambda c: all(
            c.imports[b].workflow_state not in {"created", "importing", "initializing"} for b in batches
        ),
        timeout=60,
    )
    canvas.run(canvas.canvas.flush(timeout=30), timeout=40)
    truth = {b: canvas.state(b) for b in batches}
    published = canvas.read(lambda c: len(c.published))
    wait_until(
        lambda: depth(local_sqs, canvas.queues) == published, timeout=10, what="every event in the queue"
    )
    assert published >= 300  # a few hundred messages: duplicates and every import's lifecycle

    env = {
        **dynamodb_env(local_dynamodb),
        **canvas.env(),
        "SIS_CONSUMER_STORE": f"dynamodb://{table}",
        "SIS_CONSUMER_LEASE": f"{LEASE:g}s",
        "SIS_CONSUMER_VISIBILITY_TIMEOUT": "3s",
        "SIS_CONSUMER_WAIT_TIME_SECONDS": "1",
        "SIS_CONSUMER_POLLERS": "3",
        "SIS_CONSUMER_GAUGE_INTERVAL": "0.5s",
        "SIS_CONSUMER_RECONCILE_AFTER": "2s",
        "SIS_CONSUMER_RECONCILE_SPACING": "20ms",
    }
    daemons = [Daemon(canvas.queues, tmp_path / name, **env) for name in ("a", "b", "c", "a2")]
    for d in daemons:
        d.workdir.mkdir()
    a, b, c, a2 = daemons
    try:
        a.start()
        wait_until(lambda: a.sample("sis_consumer_leader") == 1, timeout=10, what="a leads")
        b.start()
        c.start()
        wait_until(
            lambda: depth(local_sqs, canvas.queues) <= published * 2 // 3,
            timeout=60,
            what="a third of the queue drained",
        )
        leader_killed_at = datetime.now().astimezone()
        a.signal(signal.SIGKILL)
        a.wait()
        a2.start()

        wait_until(
            lambda: depth(local_sqs, canvas.queues) == 0, timeout=120, interval=0.5, what="the queue drained"
        )
        live = [b, c, a2]

        def settled() -> list[dict[str, Any]] | None:
            imports = {i["sis_batch_id"]: i for i in live[0].imports()}
            done = all(imports.get(x, {}).get("state") == state for x, state in truth.items())
            return list(imports.values()) if done else None

        wait_until(settled, timeout=60, interval=1, what="every import in its Canvas state")

        def claimed() -> dict[int, list[str]] | None:
            found = finish_claims(local_dynamodb, table)
            return found if found.keys() == set(batches) else None

        claims = wait_until(claimed, timeout=30, what="a finish claim for every import")
        assert claims is not None
        # Every finish claimed exactly once, by a daemon (none left for nobody).
        assert sorted(len(by) for by in claims.values()) == [1] * IMPORTS, claims
        assert "nobody" not in {by[0] for by in claims.values()}
        # Each live replica counted exactly what it claimed; the killed one's counts died with it.
        by_instance = Counter(by[0] for by in claims.values())
        for d in live:
            counted = d.sample("canvas_sis_imports_finished_total")
            assert counted == by_instance.get(instance(d), 0), (instance(d), counted, by_instance)
        # One leader at a time: a led, then one of b and c took over within two leases.
        successors = [d for d in (b, c) if logged_at(d, "lease.taken_over") is not None]
        assert len(successors) == 1, [d.output()[-2000:] for d in (b, c)]
        taken = logged_at(successors[0], "lease.taken_over")
        assert taken is not None
        assert (taken - leader_killed_at).total_seconds() <= 2 * LEASE
        # A leader whose renewal ran late (a loaded machine) steps down until it renews: never two.
        wait_until(
            lambda: sum(d.sample("sis_consumer_leader") for d in live) == 1,
            timeout=2 * LEASE,
            what="one leader",
        )
        followers = [d for d in live if d is not successors[0]]
        assert [d.sample("sis_consumer_canvas_requests_total") for d in followers] == [0, 0]
        assert successors[0].sample("sis_consumer_canvas_requests_total") > 0
        assert canvas.proxy is not None
        assert canvas.proxy.max_in_flight == 1
        # The store agrees with Canvas on every import, and says where each came from.
        listing = json.loads(json.dumps(settled()))
        assert {i["sis_batch_id"]: i["state"] for i in listing} == truth
    finally:
        for d in daemons:
            d.close()
