"""Shortened timings and small helpers shared by the reconciliation tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import open_sqlite
from consumer.config import Secret
from consumer.ports import SystemClock
from consumer.submitting import ImportOptions, Submitted, submit
from tests.support.canvas_thread import CanvasThread
from tests.support.daemon import Daemon

RECONCILE_AFTER = 1.0
GAUGE_INTERVAL = 0.2
SLACK = 2.0
"""Event delivery through SQS and a long poll, a process scheduled late on a busy machine."""
LOADED = 3
"""How many times slower than its configured pace the daemon may run on a busy 2-core machine.
Deadlines only stop a run that hangs; what a test checks is counted (requests, states, order)."""
NEVER = "1h"
NO_CANVAS = {
    "SIS_CONSUMER_CANVAS_URL": "",
    "SIS_CONSUMER_CANVAS_TOKEN": "",
    "SIS_CONSUMER_CANVAS_TOKEN_FILE": "",
}
"""No Canvas to ask, whatever the environment of the test run says."""
FAST = {
    "SIS_CONSUMER_RECONCILE_AFTER": f"{RECONCILE_AFTER:g}s",
    "SIS_CONSUMER_RECONCILE_SPACING": "50ms",
    "SIS_CONSUMER_GAUGE_INTERVAL": f"{GAUGE_INTERVAL * 1000:g}ms",
    "SIS_CONSUMER_WAIT_TIME_SECONDS": "1",
    "SIS_CONSUMER_STUCK_NEVER_STARTED": NEVER,
    "SIS_CONSUMER_STUCK_RUNNING": NEVER,
    "SIS_CONSUMER_STUCK_ORPHANED": NEVER,
    "SIS_CONSUMER_STUCK_SILENT": NEVER,
}


def submit_import(canvas: CanvasThread, store: Path, options: ImportOptions | None = None) -> Submitted:
    """`consumer.submitting.submit` of a small CSV into `store` (the daemon's file), as the CLI does."""
    csv = store.parent / "users.csv"
    csv.write_bytes(b"user_id,login_id,first_name,last_name,status\nu1,ada,Ada,Lovelace,active\n")

    async def go() -> Submitted:
        async with (
            open_sqlite(store) as db,
            open_canvas(canvas.canvas.url, Secret(canvas.token)) as client,
        ):
            return await submit(csv, options or ImportOptions(), canvas=client, store=db, clock=SystemClock())

    return asyncio.run(go())


def one(imports: list[dict[str, Any]], sis_batch_id: int) -> dict[str, Any]:
    found = [i for i in imports if i["sis_batch_id"] == sis_batch_id]
    assert len(found) == 1, imports
    return found[0]


def lines(daemon: Daemon, event: str, sis_batch_id: int | None = None) -> list[dict[str, Any]]:
    return [
        line
        for line in daemon.log_lines()
        if line.get("event") == event and sis_batch_id in (None, line.get("sis_batch_id"))
    ]
