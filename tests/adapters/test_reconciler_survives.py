"""The reconciler outlives whatever Canvas or a bug throws at it: its loop never ends before `stop`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.adapters.store_sqlite import open_sqlite
from consumer.lease import SoleLeader
from consumer.observability.metrics import Metrics
from consumer.ports import CanvasResponse, SystemClock
from consumer.reconciler import Reconciler, ReconcileSettings
from tests.waiting import await_until


class SurprisingCanvas:
    """A Canvas stand-in whose first answers raise what no handler expects (the one stand-in here)."""

    base_url = "https://canvas.example.edu"
    remaining: float | None = None
    most_remaining: float | None = None

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

    async def create_sis_import(
        self,
        account_id: str,
        content: bytes,
        *,
        filename: str,
        params: Mapping[str, str],
        raw: bool = False,
        content_type: str = "application/zip",
    ) -> CanvasResponse:
        raise AssertionError("the reconciler never creates imports")


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
