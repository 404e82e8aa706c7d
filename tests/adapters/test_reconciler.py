"""The reconciler in-process, with a real SQLite store: it outlives whatever Canvas or a bug throws
at it, and a token Canvas refuses makes it back off instead of asking again and again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.config import Secret
from consumer.core.tracker import Observation, State
from consumer.daemon.lease import SoleLeader
from consumer.daemon.reconciler import Reconciler, ReconcileSettings
from consumer.errors import CanvasError
from consumer.observability.metrics import Metrics
from consumer.ports import SystemClock
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.records import NOW, T0
from tests.support.waiting import await_until


class SurprisingCanvas:
    """A Canvas stand-in whose first answers raise what no handler expects (the one stand-in here)."""

    remaining: float | None = None
    most_remaining: float | None = None
    token_refused: bool | None = None

    def __init__(self, surprises: int) -> None:
        self.surprises = surprises
        self.calls = 0

    async def account(self, account_id: str = "self") -> dict[str, Any]:
        self.calls += 1
        if self.calls <= self.surprises:
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return {"id": "1", "uuid": "acct-uuid"}

    async def sis_import(self, account_id: str, import_id: int) -> dict[str, Any]:
        raise AssertionError("no import to ask about")


async def test_an_unexpected_error_while_learning_the_account_does_not_end_the_reconciler(
    tmp_path: Path,
) -> None:
    canvas = SurprisingCanvas(surprises=2)
    async with open_sqlite(tmp_path / "state.db", owner="test-daemon") as store:
        reconciler = Reconciler(
            canvas,
            store,
            Metrics(CollectorRegistry()),
            SystemClock(),
            ReconcileSettings(interval=0.01),
            SoleLeader(),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(reconciler.run(stop))

        await await_until(lambda: reconciler.account is not None or task.done(), timeout=10)

        assert not task.done(), task.exception()
        assert (reconciler.account, canvas.calls) == ("acct-uuid", 3)
        stop.set()
        await asyncio.wait_for(task, 5)


@dataclass
class Clock:
    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Rig:
    canvas: SimulatedCanvas
    store: SqliteStore
    reconciler: Reconciler
    clock: Clock
    uuid: str

    def statuses(self) -> list[int | None]:
        return [r.status for r in self.canvas.requests]

    async def ticks(self, n: int, every: timedelta = timedelta(seconds=5)) -> None:
        for _ in range(n):
            await self.reconciler.tick(asyncio.Event())
            self.clock.at += every


@pytest.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    async with (
        SimulatedCanvas() as canvas,
        open_canvas(canvas.url, Secret(canvas.tokens[1]), attempts=1) as client,
        open_sqlite(tmp_path / "state.db", owner="test-daemon") as store,
    ):
        clock = Clock(NOW)
        uuid = canvas.account(1).uuid
        settings = ReconcileSettings(reconcile_after=60, spacing=0)
        reconciler = Reconciler(client, store, Metrics(CollectorRegistry()), clock, settings, SoleLeader())
        reconciler.account, reconciler.account_id = uuid, "1"
        yield Rig(canvas, store, reconciler, clock, uuid)


async def imports_in(rig: Rig, state: State, n: int = 3) -> None:
    for batch in range(1, n + 1):
        obs = Observation(rig.uuid, batch, state, T0, source="event", account_id="1")
        await rig.store.apply(obs, T0)


@pytest.mark.parametrize("state", [State.IMPORTED, State.IMPORTING], ids=["results-due", "quiet-imports"])
async def test_a_refused_token_stops_the_tick_at_the_first_refusal(rig: Rig, state: State) -> None:
    await imports_in(rig, state)
    rig.canvas.faults.start("unauthorized")

    await rig.ticks(1)

    assert rig.statuses() == [401]


async def test_after_a_refusal_canvas_is_left_alone_for_a_while(rig: Rig) -> None:
    await imports_in(rig, State.IMPORTED)
    rig.canvas.faults.start("unauthorized")

    await rig.ticks(6)  # 30 s of ticks, 5 s apart

    assert rig.statuses() == [401]


async def test_once_the_token_works_again_the_results_are_fetched(rig: Rig) -> None:
    await imports_in(rig, State.IMPORTED)
    rig.canvas.faults.start("unauthorized")
    await rig.ticks(1)
    rig.canvas.faults.stop()

    await rig.ticks(1, every=timedelta(hours=2))
    await rig.ticks(1)

    # Refused; two hours on, the hourly `accounts/self` (accepted), then the three results.
    assert rig.statuses() == [401, 200, 404, 404, 404]
    assert set(await rig.store.results()) == {(rig.uuid, batch) for batch in (1, 2, 3)}


class UnprocessableCanvas(SurprisingCanvas):
    """Answers every SisImport lookup with an error that no retry can fix (a 422)."""

    lookups = 0

    async def sis_import(self, account_id: str, import_id: int) -> dict[str, Any]:
        self.lookups += 1
        raise CanvasError("GET sis_imports.show: 422: unprocessable", 422)


async def test_a_result_canvas_will_never_give_is_recorded_empty_and_not_asked_again(tmp_path: Path) -> None:
    canvas = UnprocessableCanvas(surprises=0)
    async with open_sqlite(tmp_path / "state.db", owner="test-daemon") as store:
        await store.apply(Observation("acct-uuid", 1, State.IMPORTED, T0, account_id="1"), T0)
        settings = ReconcileSettings(spacing=0)
        reconciler = Reconciler(
            canvas, store, Metrics(CollectorRegistry()), Clock(NOW), settings, SoleLeader()
        )
        reconciler.account, reconciler.account_id = "acct-uuid", "1"

        for _ in range(3):
            await reconciler.tick(asyncio.Event())

        assert canvas.lookups == 1
        assert (await store.results())[("acct-uuid", 1)]["workflow_state"] is None


async def test_the_reconciler_forgets_imports_once_they_are_no_longer_unfinished(rig: Rig) -> None:
    await imports_in(rig, State.IMPORTING)
    await rig.ticks(1)
    assert len(rig.reconciler._checked) == 3
    for batch in (1, 2, 3):
        await rig.store.apply(Observation(rig.uuid, batch, State.IMPORTED, T0, account_id="1"), T0)

    await rig.ticks(1)

    assert rig.reconciler._checked == {}
