"""The `rig` fixture of the worker and app-stop tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from consumer.adapters.sqs import open_queue
from consumer.adapters.store_sqlite import open_sqlite
from consumer.observability.http import Health
from consumer.observability.metrics import Metrics
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.worker_rig import Rig


@pytest.fixture
async def rig(
    queues: Queues, local_sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    registry = CollectorRegistry()
    metrics = Metrics(registry)

    async with (
        open_sqlite(tmp_path / "state.db") as store,
        open_queue(
            queues.queue_url,
            queues.dlq_url,
            region=queues.region,
            pool_size=8,
            hook=metrics.record_sqs_request,
        ) as queue,
    ):
        stop = asyncio.Event()
        rig = Rig(queues, local_sqs.client(), store, queue, registry, metrics, Health(stall_after=60), stop)
        yield rig
        # A test that failed half-way may leave its worker running: end it before closing the queue.
        stop.set()
        for task in rig.tasks:
            task.cancel()
        await asyncio.gather(*rig.tasks, return_exceptions=True)
