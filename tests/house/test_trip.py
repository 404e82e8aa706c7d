"""One SIS event's trip through the daemon, from ReceiveMessage to DeleteMessageBatch, as
`python -m tests.bench.trip` traces it (the real worker and SQS adapter on moto, a SQLite store):
few modules, and calls that only point one way (docs/architecture.md, "One message, start to
finish")."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
MOST_MODULES = 11
"""The trip's modules when this test was written (13 when the house was first reviewed)."""


@pytest.fixture(scope="module")
def trip() -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.trip", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_one_sis_event_passes_through_at_most_eleven_modules(trip: dict[str, Any]) -> None:
    assert len(trip["modules"]) <= MOST_MODULES, trip["modules"]


def test_the_worker_handler_and_sqs_adapter_never_call_back_up(trip: dict[str, Any]) -> None:
    calls = {tuple(edge) for edge in trip["calls"]}
    worker, handler, sqs = "consumer.daemon.worker", "consumer.daemon.handler", "consumer.adapters.sqs"

    back = {(handler, worker), (handler, sqs), (sqs, worker), (sqs, handler)}

    assert calls & back == set()
    assert (worker, sqs) in calls  # the trace saw the worker drive the queue


def test_the_core_calls_nothing_outside_the_core(trip: dict[str, Any]) -> None:
    outward = [
        (a, b)
        for a, b in trip["calls"]
        if a.startswith("consumer.core.") and not b.startswith("consumer.core.")
    ]

    assert outward == []
    assert any(a.startswith("consumer.core.") or b.startswith("consumer.core.") for a, b in trip["calls"])
