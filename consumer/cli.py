"""`sis-consumer`: the daemon and its companion commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from consumer import __version__
from consumer.app import Signals, open_store, serve
from consumer.config import Settings, from_env, parse_duration
from consumer.core.states import State
from consumer.errors import ConfigError, ConsumerError
from consumer.observability import logging as logs
from consumer.views import import_view, table

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sis-consumer",
        description="Watch Canvas LMS SIS imports through Canvas Live Events on SQS. "
        "Configured from SIS_CONSUMER_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the daemon (needs SIS_CONSUMER_QUEUE_URL)")
    imports = commands.add_parser("imports", help="list the imports known to the store")
    imports.add_argument("--json", action="store_true", help="print one JSON array")
    imports.add_argument("--state", choices=[s.value for s in State], help="only imports in this state")
    imports.add_argument(
        "--since", help="only imports first seen after this ISO 8601 time or this long ago (e.g. 24h)"
    )
    commands.add_parser("check-config", help="print the effective configuration, secrets masked")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = from_env(os.environ)
    except ConfigError as exc:
        print("sis-consumer: invalid configuration:", file=sys.stderr)
        for line in str(exc).splitlines():
            print(f"  {line}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        if args.command == "run":
            return _run(settings)
        if args.command == "imports":
            return asyncio.run(_imports(settings, args.json, args.state, args.since))
        if args.command == "check-config":
            return _check_config(settings)
    except ConfigError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ConsumerError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)  # argparse rejects unknown commands


def _run(settings: Settings) -> int:
    settings.require_queue()
    logs.configure(settings.log_level, settings.log_format)

    async def daemon() -> int:
        signals = Signals()
        with signals.installed():
            return await serve(settings, signals)

    return asyncio.run(daemon())


def _check_config(settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, default=str))
    if not settings.queue_url:
        print("sis-consumer: SIS_CONSUMER_QUEUE_URL is not set: `run` will refuse to start", file=sys.stderr)
        return 1
    return 0


def _since(text: str | None) -> datetime | None:
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


async def _imports(settings: Settings, as_json: bool, state: str | None, since: str | None) -> int:
    async with open_store(settings) as store:
        records = await store.records(state=None if state is None else State(state), since=_since(since))
    views = [import_view(r) for r in records]
    print(json.dumps(views, indent=2) if as_json else table(views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
