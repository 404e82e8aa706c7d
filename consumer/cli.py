"""`sis-consumer`: the daemon and its companion commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import NoReturn

import structlog

from consumer import __version__
from consumer.commands import imports as imports_command
from consumer.commands import submit as submit_command
from consumer.commands import submit_help
from consumer.commands.probe import Status
from consumer.commands.probe import probe as probe_all
from consumer.config import Settings, from_env
from consumer.config_warnings import warnings as config_warnings
from consumer.core.resolve import RESOLUTIONS, Unresolvable, resolution
from consumer.core.tracker import State
from consumer.daemon.app import Signals, serve
from consumer.errors import ConfigError, ConsumerError
from consumer.observability import logs
from consumer.stores import copy_store, init_store, open_store

EXIT_CONFIG = 2
log = structlog.get_logger("sis_consumer.cli")


class _Parser(argparse.ArgumentParser):
    """argparse's parser with the exit code of a usage error settable per (sub)command: `submit`
    runs from cron, where 2 would read as "imported with warnings"."""

    usage_exit = 2

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(self.usage_exit, f"{self.prog}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sis-consumer",
        description="Watch Canvas LMS SIS imports through Canvas Live Events on SQS. "
        "Configured from SIS_CONSUMER_* environment variables (see README).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", help="run the daemon (needs SIS_CONSUMER_QUEUE_URL)")
    commands.add_parser(
        "demo", help="a local SQS and a simulated Canvas producing a night of imports, watched by the daemon"
    )
    imports_command.configure(commands.add_parser("imports", help="list the imports known to the store"))
    check = commands.add_parser("check-config", help="print the effective configuration, secrets masked")
    check.add_argument(
        "--probe",
        action="store_true",
        help="instead, reach the queues, the store and Canvas: one line per check, exit 1 if one fails",
    )
    resolve = commands.add_parser(
        "resolve",
        help="record how an import ended when only a person can tell (aborted in Canvas, orphaned)",
        description="Record what you found about an unfinished import the daemon cannot settle by "
        "itself: aborted in Canvas without a token to see it, an orphaned `initializing`, a job that "
        "died. The finish is journaled with your reason and counted once by the running daemon.",
    )
    resolve.add_argument("account", metavar="ACCOUNT", help="the root account UUID (the `account` label)")
    resolve.add_argument("sis_batch_id", metavar="SIS_BATCH_ID", type=int, help="the import's id")
    resolve.add_argument(
        "--as",
        dest="state",
        required=True,
        choices=[s.value for s in RESOLUTIONS],
        help="how the import ended",
    )
    resolve.add_argument("--why", required=True, help="your reason, for the journal (who, what you saw)")
    _sandbox_parser(
        commands.add_parser("sandbox", help="a local SQS and a simulated Canvas for your own scripts")
    )
    submit = commands.add_parser("submit", help="POST an SIS import to Canvas and record it")
    assert isinstance(submit, _Parser)
    submit.usage_exit = submit_help.EXIT_USAGE
    submit_command.configure(submit)
    store = commands.add_parser("store", help="create the store, or copy a SQLite store into DynamoDB")
    store_commands = store.add_subparsers(dest="store_command", required=True, metavar="STORE_COMMAND")
    store_commands.add_parser(
        "init",
        help="create the store of SIS_CONSUMER_STORE if it is missing (a DynamoDB table: TTL and PITR on)",
    )
    copy = store_commands.add_parser(
        "copy", help="copy imports, submissions and results from a SQLite store into a DynamoDB table"
    )
    copy.add_argument("source", metavar="SRC", help="sqlite:///path/state.db")
    copy.add_argument(
        "target", metavar="DST", help="dynamodb://table (region and endpoint from AWS_* variables)"
    )
    return parser


def _sandbox_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run a local SQS queue and a simulated Canvas until Ctrl-C/SIGTERM. Point your SIS script at "
        "the Canvas URL; its imports run by themselves and publish Live Events to the queue."
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object as the first stdout line")
    parser.add_argument(
        "--port", type=int, default=0, help="the simulated Canvas's port (default: a free one)"
    )
    parser.add_argument(
        "--fates",
        default="",
        metavar="LIST",
        help="comma-separated fates for the imports, in turn: imported, imported_with_messages, failed, "
        "failed_with_messages, aborted, stuck (default: the demo's random mix)",
    )
    parser.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="FACTOR",
        help="multiply every duration (0.1: ten times faster)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # reported by the subcommand's parser, with its usage line and exit code
        chosen = _subparsers(parser).get(args.command, parser)
        chosen.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "submit":
        return submit_command.run(args, os.environ)
    if args.command == "demo":
        return _demo()
    if args.command == "sandbox":
        return _sandbox(args)
    try:
        settings = from_env(os.environ)
    except ConfigError as exc:
        return _config_error(exc)
    try:
        if args.command == "run":
            return _run(settings)
        if args.command == "imports":
            return asyncio.run(imports_command.run(settings, args))
        if args.command == "check-config":
            return _check_config(settings, args.probe)
        if args.command == "resolve":
            return asyncio.run(
                _resolve(settings, args.account, args.sis_batch_id, State(args.state), args.why)
            )
        if args.command == "store":
            return asyncio.run(_store(settings, args))
    except ConfigError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ConsumerError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)  # argparse rejects unknown commands


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _config_error(exc: ConfigError) -> int:
    print("sis-consumer: invalid configuration:", file=sys.stderr)
    for line in str(exc).splitlines():
        print(f"  {line}", file=sys.stderr)
    return EXIT_CONFIG


def _run(settings: Settings) -> int:
    settings.require_queue()
    logs.configure(settings.log_level, settings.log_format)
    for warning in config_warnings(os.environ, settings):
        log.warning("config.warning", detail=warning)

    async def daemon() -> int:
        signals = Signals()
        with signals.installed():
            return await serve(settings, signals)

    return asyncio.run(daemon())


def _demo() -> int:
    try:
        from consumer.commands.demo import DEMO_DEFAULTS, run_demo  # the sandbox needs moto: import only here
    except ModuleNotFoundError as exc:
        missing = (exc.name or "consumer").partition(".")[0]
        if missing == "consumer":
            raise
        # The production install (the container image) leaves the sandbox out.
        print(
            f"sis-consumer: demo needs the sandbox extra ({missing} is missing): "
            "pip install 'sis-consumer[sandbox]'",
            file=sys.stderr,
        )
        return 1
    try:
        # The sandbox's queue and Canvas come later; what the user set is validated now, as for `run`.
        early = from_env({**DEMO_DEFAULTS, **os.environ})
        logs.configure(early.log_level, early.log_format)
        return asyncio.run(run_demo(os.environ))
    except ConfigError as exc:
        return _config_error(exc)
    except ConsumerError as exc:  # a port already taken, a store that cannot be opened
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return 1


def _sandbox(args: argparse.Namespace) -> int:
    from consumer.sandbox.standalone import knobs_for, serve_sandbox  # the sandbox needs moto

    try:
        knobs = knobs_for(tuple(f.strip() for f in args.fates.split(",") if f.strip()), args.time_scale)
    except ValueError as exc:
        print(f"sis-consumer sandbox: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    try:
        return asyncio.run(serve_sandbox(knobs, port=args.port, as_json=args.json))
    except OSError as exc:  # the port is taken, or not ours to bind
        print(f"sis-consumer sandbox: cannot listen on port {args.port}: {exc.strerror}", file=sys.stderr)
        return 1


def _check_config(settings: Settings, probe: bool) -> int:
    for warning in config_warnings(os.environ, settings):
        print(f"sis-consumer: warning: {warning}", file=sys.stderr)
    if probe:
        checks = asyncio.run(probe_all(settings))
        print("\n".join(check.line() for check in checks))
        return 1 if any(check.status is Status.FAIL for check in checks) else 0
    print(json.dumps(settings.describe(), indent=2, default=str))
    if not settings.queue_url:
        print("sis-consumer: SIS_CONSUMER_QUEUE_URL is not set: `run` will refuse to start", file=sys.stderr)
        return 1
    return 0


async def _resolve(settings: Settings, account: str, sis_batch_id: int, state: State, why: str) -> int:
    """The operator's word on one import; a store opened without an owner leaves the finish for the
    daemon's watchdog to count, as `submit` does."""
    now = datetime.now(UTC)
    async with open_store(settings) as store:
        record = await store.record(account, sis_batch_id)
        try:
            obs = resolution(record, (account, sis_batch_id), state, why, now)
        except Unresolvable as exc:
            print(f"sis-consumer: {exc}", file=sys.stderr)
            return 1
        applied = await store.apply(obs, now, "operator")
    was = "unknown" if record is None else record.state.value
    print(
        f"import {sis_batch_id} of account {account}: {was} -> {applied.record.state.value}"
        " (journaled; a running daemon counts the finish within a few seconds)"
    )
    return 0


async def _store(settings: Settings, args: argparse.Namespace) -> int:
    if args.store_command == "init":
        for line in await init_store(settings):
            print(line)
        return 0
    counts = await copy_store(settings, args.source, args.target)
    print(", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing to copy")
    return 0


if __name__ == "__main__":
    sys.exit(main())
