"""One message's trip through the daemon's code: which `consumer` functions one SIS event runs in
`MessageHandler.handle` (a real SQLite store, metrics and the JSON log line), in how many modules,
changing module how often. A structural figure for docs/architecture.md, not a timing.

    .venv/bin/python -m tests.bench.trip [-v]
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import tempfile
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.ack import Message
from consumer.adapters.store_sqlite import open_sqlite
from consumer.handler import MessageHandler
from consumer.observability.metrics import Metrics
from consumer.ports import SystemClock
from tests.bench.micro import logs_to_devnull
from tests.support.live_events import AT, sis_event

Call = tuple[str, str]


async def _trace() -> list[Call]:
    calls: list[Call] = []

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        module = frame.f_globals.get("__name__", "")
        if event == "call" and module.startswith("consumer."):
            calls.append((module, frame.f_code.co_qualname))

    with tempfile.TemporaryDirectory() as tmp:
        async with open_sqlite(Path(tmp) / "state.db") as store:
            handler = MessageHandler(store, Metrics(CollectorRegistry()), SystemClock(), frozenset())
            await handler.handle(Message("m1", "r1", sis_event(sis_batch_id=77, state="created")))
            # Built before the trace starts: only the handling is traced.
            later = sis_event(sis_batch_id=77, state="importing", at=AT + timedelta(minutes=1))
            message = Message("m2", "r2", later)
            sys.setprofile(profile)
            try:
                await handler.handle(message)
            finally:
                sys.setprofile(None)
    return calls


def main() -> None:
    logs_to_devnull()
    calls = asyncio.run(_trace())
    modules = list(dict.fromkeys(m for m, _ in calls))
    changes = sum(1 for a, b in itertools.pairwise(calls) if a[0] != b[0])
    print(
        f"{len(set(calls))} functions, {len(modules)} modules, {changes} module changes, {len(calls)} calls"
    )
    print(" ".join(m.removeprefix("consumer.") for m in modules))
    if "-v" in sys.argv:
        previous = None
        for module, function in calls:
            print(("   " if module == previous else "-> ") + f"{module.removeprefix('consumer.')}:{function}")
            previous = module


if __name__ == "__main__":
    main()
