"""The `Reconciler` in-process: the simulated Canvas behind a `FaultyCanvas`, a real SQLite store,
metrics on a fresh registry, and a clock the test moves by hand.

A tick is one call to `Reconciler.tick`, so a test can say exactly what one tick asked; the time a
quiet import has been quiet is the clock's, so `RECONCILE_AFTER` is ten minutes, as in production.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.config import Secret
from consumer.core.tracker import Observation, State
from consumer.daemon.lease import SoleLeader
from consumer.daemon.reconciler import Reconciler, ReconcileSettings
from consumer.observability.metrics import Metrics
from consumer.ports import Leader
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.canvas_thread import ACCOUNT_ID
from tests.support.faults import FaultyCanvas

RECONCILE_AFTER = 600.0
ATTEMPTS = 3
"""The client's tries per request (production: 5); its backoff is shortened to milliseconds."""
RESULTS = ("unchanged", "advanced", "finished_silently", "not_found", "error")


@dataclass
class HandClock:
    """The `Clock` port, moved only by `advance`."""

    at: datetime = field(default_factory=lambda: datetime.now(UTC) + timedelta(hours=1))

    def now(self) -> datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


@dataclass
class HandLeader:
    """The `Leader` port, leading or not as the test says."""

    leading: bool = True
    token: None = None


@dataclass
class Rig:
    canvas: SimulatedCanvas
    proxy: FaultyCanvas
    store: SqliteStore
    registry: CollectorRegistry
    clock: HandClock
    reconciler: Reconciler
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def account(self) -> str:
        return self.canvas.account(ACCOUNT_ID).uuid

    async def learn_account(self) -> None:
        """What `Reconciler.run` does before its first tick."""
        await self.reconciler._learn_account(self.stop)

    async def tick(self) -> None:
        await self.reconciler.tick(self.stop)

    async def quiet(self, batch: int, minutes_ago: float = 5.0) -> None:
        """Record `batch` as `created`, last heard of `minutes_ago` (before Canvas's own times, so
        Canvas's answer about a still-waiting import is no news)."""
        at = datetime.now(UTC) - timedelta(minutes=minutes_ago)
        obs = Observation(self.account, batch, State.CREATED, at, account_id=str(ACCOUNT_ID))
        await self.store.apply(obs, at)

    async def waiting_import(self, minutes_ago: float = 5.0) -> int:
        """An import Canvas keeps in `created` (its jobs are stopped), known to the store as quiet."""
        self.canvas.stop_jobs(ACCOUNT_ID)
        batch = (await self.canvas.start_import(ACCOUNT_ID)).id
        await self.quiet(batch, minutes_ago)
        return batch

    async def state(self, batch: int) -> State:
        record = await self.store.record(self.account, batch)
        assert record is not None
        return record.state

    def asked(self, batch: int) -> list[int]:
        """Statuses of every `GET .../sis_imports/:id` about `batch`, in order."""
        return self.proxy.statuses("GET", rf"/sis_imports/{batch}$")

    def results(self) -> dict[str, float]:
        """`sis_consumer_reconciliations_total` by result."""
        name = "sis_consumer_reconciliations_total"
        found = {r: self.registry.get_sample_value(name, {"result": r}) for r in RESULTS}
        return {r: v for r, v in found.items() if v}

    def token_refused_since(self) -> float | None:
        return self.registry.get_sample_value("sis_consumer_canvas_token_refused_since_timestamp_seconds")

    def canvas_requests(self, endpoint: str, status: str) -> float:
        labels = {"endpoint": endpoint, "status": status}
        return self.registry.get_sample_value("sis_consumer_canvas_requests_total", labels) or 0.0


@asynccontextmanager
async def open_rig(
    canvas: SimulatedCanvas, directory: Path, leader: Leader | None = None, **settings: Any
) -> AsyncIterator[Rig]:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    proxy = FaultyCanvas(canvas.url)
    async with (
        proxy,
        open_sqlite(directory / "state.db") as store,
        open_canvas(
            proxy.url,
            Secret(canvas.tokens[ACCOUNT_ID]),
            hook=metrics.record_canvas_response,
            attempts=ATTEMPTS,
            backoff_base=0.005,
        ) as client,
    ):
        clock = HandClock()
        options = {"reconcile_after": RECONCILE_AFTER, "spacing": 0.001, "interval": 0.01, **settings}
        reconciler = Reconciler(
            client, store, metrics, clock, ReconcileSettings(**options), leader or SoleLeader()
        )
        yield Rig(canvas, proxy, store, registry, clock, reconciler)
