"""One message's trip through the daemon's code, from ReceiveMessage to DeleteMessageBatch: which
`consumer` functions one SIS event runs, in how many modules, changing module how often.

The real `Worker` (one poller) and SQS adapter on moto's SQS server, the real `MessageHandler` on a
SQLite store, metrics and the JSON log line. The import's first event is handled before the trace
starts, so the traced one is the common case: a later event of a known import. A structural figure
for docs/architecture.md, not a timing.

    .venv/bin/python -m tests.bench.trip [-v | --json]

`--json` prints one object: `functions`, `modules` (in the order first entered), `module_changes`
and `calls` (caller module -> callee module, each pair once), for tests/house.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from types import FrameType
from typing import Any

from consumer.ack import Message, Outcome
from consumer.daemon.handler import MessageHandler
from consumer.daemon.worker import PollSettings, Worker
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.bench.micro import logs_to_devnull
from tests.support.live_events import AT, sis_event
from tests.support.worker_rig import Rig, open_rig

Call = tuple[str, str, str]
"""(module, function, the calling frame's module)."""


class _Once:
    """The real handler, stopping the worker once it has handled one message."""

    def __init__(self, handler: MessageHandler, stop: asyncio.Event) -> None:
        self._handler = handler
        self._stop = stop

    async def handle(self, message: Message) -> Outcome:
        outcome = await self._handler.handle(message)
        self._stop.set()
        return outcome


@contextmanager
def _profiled(calls: list[Call]) -> Iterator[None]:
    # A coroutine resumed after an await is reported as a "call" again: count each frame once.
    started: dict[int, FrameType] = {}

    def profile(frame: FrameType, event: str, _arg: Any) -> None:
        module = frame.f_globals.get("__name__", "")
        if event == "call" and module.startswith("consumer.") and id(frame) not in started:
            started[id(frame)] = frame  # kept alive, so that its id is not reused
            caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back is not None else ""
            calls.append((module, frame.f_code.co_qualname, caller))

    sys.setprofile(profile)
    try:
        yield
    finally:
        sys.setprofile(None)


def _worker(rig: Rig, handler: MessageHandler) -> tuple[Worker, asyncio.Event]:
    """Wired as `app.serve` wires it: the SQS hook, the health, the batch made durable."""
    stop = asyncio.Event()
    settings = PollSettings(pollers=1, wait_seconds=2, visibility_timeout=30)
    worker = Worker(
        rig.queue, _Once(handler, stop), settings, rig.metrics, rig.health, durable=rig.store.flush
    )
    return worker, stop


async def _trace(queues: Queues, local: LocalSqs) -> list[Call]:
    calls: list[Call] = []
    first = sis_event(sis_batch_id=77, state="created")
    later = sis_event(sis_batch_id=77, state="importing", at=AT + timedelta(minutes=1))
    with tempfile.TemporaryDirectory() as tmp:
        async with open_rig(queues, local, Path(tmp)) as rig:
            handler = MessageHandler(rig.store, rig.metrics, frozenset())
            for body, traced in ((first, False), (later, True)):
                await rig.send(body)
                worker, stop = _worker(rig, handler)
                with _profiled(calls) if traced else contextlib.nullcontext():
                    await worker.run(stop)
            left = await rig.counts()
    if left != (0, 0):
        raise SystemExit(f"the message was not deleted: (visible, in flight) = {left}")
    return calls


def main() -> None:
    logs_to_devnull()
    with LocalSqs() as local:
        queues = local.create_queues()
        os.environ.update(queues.env())
        calls = asyncio.run(_trace(queues, local))
    modules = list(dict.fromkeys(m for m, _, _ in calls))
    changes = sum(1 for a, b in itertools.pairwise(calls) if a[0] != b[0])
    if "--json" in sys.argv:
        # A generator expression's frame is resumed by whoever iterates it: not a call.
        edges = sorted(
            {(c, m) for m, f, c in calls if c.startswith("consumer.") and c != m and "<genexpr>" not in f}
        )
        summary = {"functions": len({(m, f) for m, f, _ in calls}), "modules": modules}
        print(json.dumps(summary | {"module_changes": changes, "calls": edges}))
        return
    print(
        f"{len({(m, f) for m, f, _ in calls})} functions, {len(modules)} modules, {changes} module changes,"
        f" {len(calls)} calls"
    )
    print(" ".join(m.removeprefix("consumer.") for m in modules))
    if "-v" in sys.argv:
        previous = None
        for module, function, _ in calls:
            print(("   " if module == previous else "-> ") + f"{module.removeprefix('consumer.')}:{function}")
            previous = module


if __name__ == "__main__":
    main()
