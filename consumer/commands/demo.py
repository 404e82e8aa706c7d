"""`sis-consumer demo`: the embedded default. A local SQS, a simulated Canvas producing a night of
SIS imports, and the real daemon (`app.serve`, the same wiring as `run`) watching them. One of the
night's files arrives through the drop folder (a local S3 bucket), and an empty one is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import textwrap
from collections import Counter
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.config import Secret, from_env
from consumer.daemon.app import Signals, serve
from consumer.errors import CanvasError
from consumer.ports import Canvas, SubmissionStore, SystemClock
from consumer.sandbox.knobs import Knobs, Outcome
from consumer.sandbox.local_sqs import DropFolder
from consumer.sandbox.stack import Sandbox
from consumer.sandbox.waiting import wait_until
from consumer.submitting import ImportOptions, submit

# Canvas takes minutes to hours; the demo runs a night in about a minute. Every import of the night
# is planned, so none of the random outcomes; no random loss either (the script loses one on purpose).
KNOBS = replace(
    Knobs.demo(),
    failed_rate=0.0,
    failed_with_messages_rate=0.0,
    warning_rate=0.0,
    abort_rate=0.0,
    stuck_rate=0.0,
    loss_rate=0.0,
)
DEMO_DEFAULTS = {
    "SIS_CONSUMER_LOG_FORMAT": "console",
    "SIS_CONSUMER_WAIT_TIME_SECONDS": "2",
    "SIS_CONSUMER_GAUGE_INTERVAL": "1s",
    "SIS_CONSUMER_RECONCILE_AFTER": "6s",
    "SIS_CONSUMER_RECONCILE_SPACING": "200ms",
    "SIS_CONSUMER_STUCK_RUNNING": "25s",
    "SIS_CONSUMER_STUCK_NEVER_STARTED": "30s",
    "SIS_CONSUMER_STUCK_ORPHANED": "20s",
    "SIS_CONSUMER_STUCK_SILENT": "15s",
    "SIS_CONSUMER_SHUTDOWN_GRACE": "10s",
}
SUBMITTED_ACCOUNT, UI_ACCOUNT = 1, 2
STORE_FILE = "sis-consumer-demo.db"
"""The demo's store, in the working directory: kept when the demo ends, for `sis-consumer imports`."""
LOOK_AGAIN = f"SIS_CONSUMER_STORE=sqlite:///{STORE_FILE} sis-consumer imports"
CSV = b"user_id,login_id,first_name,last_name,email,status\nu1,jdoe,Jane,Doe,jdoe@example.edu,active\n"
# The drop folder's rule: a nightly batch-mode sync of one term, safe because of its change_threshold.
INTAKE_RULES = """
[[rules]]
prefix = "nightly/"
[rules.options]
batch_mode = true
batch_mode_term_id = "sis_term_id:2026FA"
change_threshold = 10
"""


async def night(sandbox: Sandbox, store_path: Path, drop: DropFolder) -> None:
    """The scripted night: our cron-style submissions on one account (one of them dropped into the
    S3 bucket instead, and an empty file the daemon refuses), the Canvas UI on another."""
    canvas = sandbox.canvas
    ours: list[tuple[Outcome, dict[str, Any]]] = [
        ("imported", {}),
        ("imported_with_messages", {}),
        ("failed_with_messages", {}),
        ("aborted", {}),  # Canvas sends no event for an abort: the reconciler finds it
        ("imported", {"lose": ["imported"]}),  # a lost terminal event, recovered from the API
        ("imported", {"stuck": True}),  # the job dies: running_too_long after a while
        ("imported", {}),  # waits behind the stuck one: NOT stuck itself
    ]
    theirs: list[Outcome] = ["imported", "failed", "imported_with_messages", "imported", "imported"]
    token = Secret(canvas.tokens[SUBMITTED_ACCOUNT])
    async with open_sqlite(store_path) as store, open_canvas(canvas.url, token) as client:
        for i in range(max(len(ours), len(theirs))):
            if i < len(ours):
                outcome, extra = ours[i]
                canvas.plan(SUBMITTED_ACCOUNT, outcome, **extra)
                await _submit_one(client, store, i)
            if i < len(theirs):
                canvas.plan(UI_ACCOUNT, theirs[i])
                await canvas.start_import(UI_ACCOUNT, CSV, f"ui-upload-{i}.csv")
            if i == 1:
                await _drop(sandbox, drop)
            await asyncio.sleep(2.5)
        while True:  # a quiet trickle afterwards, so the graphs keep moving
            await asyncio.sleep(15)
            canvas.plan(UI_ACCOUNT, "imported")
            await canvas.start_import(UI_ACCOUNT, CSV, "ui-upload-late.csv")


async def _drop(sandbox: Sandbox, drop: DropFolder) -> None:
    """Upload tonight's file to the drop folder and wait for the daemon to submit it (its fate is
    planned, so it must be the next import of the account), then an empty file it must refuse."""
    canvas = sandbox.canvas
    before = len(canvas.imports)
    canvas.plan(SUBMITTED_ACCOUNT, "imported")
    s3 = sandbox.local_sqs.s3_client()
    await asyncio.to_thread(s3.put_object, Bucket=drop.bucket, Key=f"{drop.prefix}users.csv", Body=CSV)
    try:
        await wait_until(lambda: len(canvas.imports) > before, timeout=30, what="the drop folder's import")
    except TimeoutError:
        print("demo: the daemon did not submit the drop folder's file within 30 s", file=sys.stderr)
    await asyncio.to_thread(s3.put_object, Bucket=drop.bucket, Key=f"{drop.prefix}empty.csv", Body=b"")


async def _submit_one(client: Canvas, store: SubmissionStore, i: int) -> None:
    path = Path(tempfile.gettempdir()) / f"sis-demo-{os.getpid()}-{i}.csv"
    path.write_bytes(CSV)
    try:
        await submit(path, ImportOptions(), canvas=client, store=store, clock=SystemClock())
    except CanvasError as exc:
        print(f"demo: submission {i} refused: {exc}", file=sys.stderr)
    finally:
        path.unlink(missing_ok=True)


async def summary(store_path: Path, every: float = 5.0) -> None:
    """What the daemon knows, printed again only when it changed."""
    shown = ""
    async with open_sqlite(store_path) as store:
        while True:
            await asyncio.sleep(every)
            text = await _summary(store)
            if text != shown:
                print(text, flush=True)
                shown = text


async def _summary(store: SqliteStore) -> str:
    records = await store.records()
    stuck = await store.stuck()  # the daemon's own verdicts
    states = Counter(r.state.value for r in records)
    durations = sorted(d for r in records if (d := r.duration_seconds) is not None)
    lines = ["", "── sis-consumer demo: what the daemon knows " + "─" * 30]
    counts = ", ".join(f"{n} {s}" for s, n in sorted(states.items()))
    lines += textwrap.wrap(counts, 76, initial_indent="  imports: ", subsequent_indent=" " * 11)
    if durations:
        p50 = durations[len(durations) // 2]
        lines.append(
            f"  duration: median {p50:.1f}s, longest {durations[-1]:.1f}s ({len(durations)} finished)"
        )
    for (account, batch), submitted in sorted((await store.submissions()).items()):
        if submitted.source is not None:
            state = next((r.state.value for r in records if r.key == (account, batch)), "?")
            lines.append(
                f"  dropped: {submitted.source.key} -> import "
                f"{batch}, {state}" + (f", tagged {submitted.reported}" if submitted.reported else "")
            )
    for (account, batch), verdict in sorted(stuck.items()):
        lines.append(f"  STUCK: import {batch} of account {account[:8]}…: {verdict.reason.value}")
    if not stuck:
        lines.append("  stuck: none")
    return "\n".join(lines) + "\n"


async def run_demo(env: Mapping[str, str]) -> int:
    signals = Signals()
    store_path = Path(STORE_FILE)
    for stale in (store_path, Path(f"{STORE_FILE}-wal"), Path(f"{STORE_FILE}-shm")):
        stale.unlink(missing_ok=True)  # the sandbox numbers its imports from the same id each time
    with signals.installed():
        async with Sandbox(knobs=KNOBS) as sandbox:
            # botocore reads the endpoint and credentials from the environment: point it at moto.
            os.environ.update(sandbox.queues.env())
            drop = await asyncio.to_thread(sandbox.local_sqs.create_drop_folder, "nightly/")
            settings = from_env(
                {
                    **DEMO_DEFAULTS,
                    **env,
                    **sandbox.env(SUBMITTED_ACCOUNT),
                    **drop.env(),
                    "SIS_CONSUMER_INTAKE_RULES": INTAKE_RULES,
                    "SIS_CONSUMER_STORE": f"sqlite:///{store_path}",
                }
            )
            print(
                f"sis-consumer demo: the daemon, against\n"
                f"  a simulated Canvas  {sandbox.canvas.url}\n"
                f"  a local SQS         {sandbox.queues.endpoint_url}\n"
                f"  a drop folder       s3://{drop.bucket}/{drop.prefix}\n"
                f"Metrics: http://{settings.metrics_addr}/metrics   (Ctrl-C stops everything)\n"
                f"Its imports, now or later:\n  {LOOK_AGAIN}\n",
                flush=True,
            )
            tasks: list[asyncio.Task[None]] = []

            def started(_port: int) -> None:
                tasks.append(asyncio.create_task(night(sandbox, store_path, drop)))
                tasks.append(asyncio.create_task(summary(store_path)))

            try:
                return await serve(settings, signals, registry=CollectorRegistry(), on_ready=started)
            finally:
                for task in tasks:
                    task.cancel()
                for task in tasks:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                print(f"\nThe store stays: {LOOK_AGAIN}", flush=True)
