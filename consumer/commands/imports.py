"""`sis-consumer imports`: what the store knows, as a table, as JSON, or refreshed like `top`.

The STUCK column is the daemon's own verdict, recorded by its watchdog with the daemon's
thresholds, not judged again here with whatever this shell's environment says.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from consumer.commands.arguments import duration, whole_number
from consumer.commands.views import compact, import_view, table
from consumer.config import Settings, parse_duration
from consumer.core.tracker import State
from consumer.daemon.loops import pause
from consumer.errors import ConfigError
from consumer.ports import Store
from consumer.stores import open_store

STUCK = "stuck"
CLEAR = "\x1b[H\x1b[J"
"""Cursor home, clear to the end: a terminal redraws in place, as `top` does."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON array")
    parser.add_argument(
        "--state",
        choices=[*(s.value for s in State), STUCK],
        help="only imports in this state; stuck: only those the daemon judged stuck",
    )
    parser.add_argument("--stuck", action="store_true", help="only imports the daemon judged stuck")
    parser.add_argument(
        "--since", help="only imports first seen after this ISO 8601 time or this long ago (e.g. 24h)"
    )
    parser.add_argument("--watch", action="store_true", help="refresh a compact table until Ctrl-C, like top")
    parser.add_argument(
        "--interval",
        type=duration,
        default=2.0,
        metavar="DURATION",
        help="with --watch: refresh this often (default 2s)",
    )
    parser.add_argument(
        "--count",
        type=whole_number(1),
        metavar="N",
        help="with --watch: stop after N refreshes (like top -n)",
    )


def since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return datetime.now(UTC) - timedelta(seconds=parse_duration(text))
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise ConfigError(f"--since: {text!r} is neither an ISO 8601 time nor a duration") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


async def run(settings: Settings, args: argparse.Namespace) -> int:
    stuck_only = args.stuck or args.state == STUCK
    state = None if args.state in (None, STUCK) else State(args.state)
    async with open_store(settings, existing=True) as store:
        if not args.watch:
            views = await _views(store, settings, state, since(args.since), stuck_only)
            print(json.dumps(views, indent=2) if args.json else table(views))
            return 0
        return await _watch(store, settings, args, state, stuck_only)


async def _views(
    store: Store, settings: Settings, state: State | None, after: datetime | None, stuck_only: bool
) -> list[dict[str, Any]]:
    records = await store.records(state=state, since=after)
    verdicts = await store.stuck()
    submissions = await store.submissions()
    results = await store.results()
    views = [
        import_view(r, verdicts.get(r.key), submissions.get(r.key), results.get(r.key), settings.canvas_url)
        for r in records
    ]
    return [v for v in views if v["stuck"]] if stuck_only else views


async def _watch(
    store: Store,
    settings: Settings,
    args: argparse.Namespace,
    state: State | None,
    stuck_only: bool,
) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    redraw = sys.stdout.isatty()
    shown = 0
    while not stop.is_set() and (args.count is None or shown < args.count):
        views = await _views(store, settings, state, since(args.since), stuck_only)
        rows = shutil.get_terminal_size((100, 24)).lines - 1
        frame = compact(views, datetime.now(UTC), rows)
        print((CLEAR if redraw else ("\n" if shown else "")) + frame, flush=True)
        shown += 1
        if args.count is None or shown < args.count:
            await pause(stop, args.interval)
    return 0
