"""`sis-consumer`: the daemon and its companion commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from pathlib import Path

from consumer import __version__
from consumer.adapters.canvas import open_canvas
from consumer.app import Signals, serve
from consumer.config import Settings, from_env, parse_duration
from consumer.core.learned import thresholds_for
from consumer.core.resolve import RESOLUTIONS, Unresolvable, resolution
from consumer.core.sis_import import result_summary
from consumer.core.states import State
from consumer.core.stuck import stuck_imports
from consumer.errors import CanvasError, CanvasUnanswered, ConfigError, ConsumerError
from consumer.observability import logging as logs
from consumer.ports import SystemClock
from consumer.stores import copy_store, init_store, open_store
from consumer.submit import ImportOptions, exit_code, submit, wait_for_finish
from consumer.views import import_view, table

EXIT_CONFIG = 2
EXIT_SUBMIT_FAILED = 4


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    imports = commands.add_parser("imports", help="list the imports known to the store")
    imports.add_argument("--json", action="store_true", help="print one JSON array")
    imports.add_argument("--state", choices=[s.value for s in State], help="only imports in this state")
    imports.add_argument(
        "--since", help="only imports first seen after this ISO 8601 time or this long ago (e.g. 24h)"
    )
    commands.add_parser("check-config", help="print the effective configuration, secrets masked")
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
    _submit_parser(commands.add_parser("submit", help="POST an SIS import to Canvas and record it"))
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


_BOOL_OPTIONS = [f.name for f in fields(ImportOptions) if f.type == "bool"]
_VALUE_OPTIONS = {f.name: f.type for f in fields(ImportOptions) if f.type != "bool"}


def _submit_parser(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "POST FILE to the SIS Imports API, record the submission in the store, and print the "
        "SisImport JSON. Needs SIS_CONSUMER_CANVAS_URL and SIS_CONSUMER_CANVAS_TOKEN[_FILE]. "
        "With --wait: exit 0 imported, 2 imported_with_messages, 1 failed or aborted, 3 timed out "
        "(4: Canvas refused the request)."
    )
    parser.add_argument("file", type=Path, help="a .zip, .csv or .xml SIS file")
    parser.add_argument("--account-id", default="self", help="the root account (default: self)")
    parser.add_argument("--raw", action="store_true", help="send the file as the raw body, not multipart")
    parser.add_argument("--wait", action="store_true", help="follow the import until it finishes")
    parser.add_argument("--timeout", default="2h", help="with --wait: give up after this long (default 2h)")
    parser.add_argument(
        "--api-interval", default="30s", help="with --wait: ask the API this often (default 30s)"
    )
    options = parser.add_argument_group("Canvas import options")
    for name in _BOOL_OPTIONS:
        options.add_argument("--" + name.replace("_", "-"), action="store_true", dest=name)
    for name, kind in _VALUE_OPTIONS.items():
        options.add_argument(
            "--" + name.replace("_", "-"), dest=name, type=int if "int" in str(kind) else str, metavar="VALUE"
        )


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
    args = _parser().parse_args(argv)
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
            return asyncio.run(_imports(settings, args.json, args.state, args.since))
        if args.command == "check-config":
            return _check_config(settings)
        if args.command == "resolve":
            return asyncio.run(
                _resolve(settings, args.account, args.sis_batch_id, State(args.state), args.why)
            )
        if args.command == "submit":
            return asyncio.run(_submit(settings, args))
        if args.command == "store":
            return asyncio.run(_store(settings, args))
    except ConfigError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except ConsumerError as exc:
        print(f"sis-consumer: {exc}", file=sys.stderr)
        return 1
    raise AssertionError(args.command)  # argparse rejects unknown commands


def _config_error(exc: ConfigError) -> int:
    print("sis-consumer: invalid configuration:", file=sys.stderr)
    for line in str(exc).splitlines():
        print(f"  {line}", file=sys.stderr)
    return EXIT_CONFIG


def _run(settings: Settings) -> int:
    settings.require_queue()
    logs.configure(settings.log_level, settings.log_format)

    async def daemon() -> int:
        signals = Signals()
        with signals.installed():
            return await serve(settings, signals)

    return asyncio.run(daemon())


def _demo() -> int:
    try:
        from consumer.demo import DEMO_DEFAULTS, run_demo  # the sandbox needs moto: import only here
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


def _check_config(settings: Settings) -> int:
    print(json.dumps(settings.describe(), indent=2, default=str))
    if not settings.queue_url:
        print("sis-consumer: SIS_CONSUMER_QUEUE_URL is not set: `run` will refuse to start", file=sys.stderr)
        return 1
    return 0


async def _submit(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.canvas_url or settings.canvas_token is None:
        raise ConfigError(
            "submit needs SIS_CONSUMER_CANVAS_URL and SIS_CONSUMER_CANVAS_TOKEN (or _TOKEN_FILE)"
        )
    if not args.file.is_file():
        raise ConfigError(f"{args.file}: no such file")
    # Checked before the first request: a typo must not leave an import behind in Canvas.
    give_up_after = _positive_duration("--timeout", args.timeout)
    api_interval = _positive_duration("--api-interval", args.api_interval)
    options = ImportOptions(**{f.name: getattr(args, f.name) for f in fields(ImportOptions)})
    clock = SystemClock()
    async with (
        open_store(settings) as store,
        open_canvas(
            settings.canvas_url, settings.canvas_token, request_seconds=settings.canvas_timeout
        ) as canvas,
    ):
        try:
            submitted = await submit(
                args.file,
                options,
                canvas=canvas,
                store=store,
                clock=clock,
                account_ref=args.account_id,
                raw=args.raw,
            )
        except CanvasUnanswered as exc:
            print(
                f"sis-consumer: Canvas did not answer the import's POST ({exc}), but may have created "
                "the import: look for it (`sis-consumer imports`, the Canvas UI) before submitting again",
                file=sys.stderr,
            )
            return EXIT_SUBMIT_FAILED
        except CanvasError as exc:
            print(f"sis-consumer: Canvas did not take the import: {exc}", file=sys.stderr)
            return EXIT_SUBMIT_FAILED
        if not args.wait:
            print(json.dumps(dict(submitted.sis_import), indent=2))
            return 0
        print(f"submitted: SIS import {submitted.sis_batch_id}, waiting for it to finish...", file=sys.stderr)
        try:
            outcome, sis_import = await wait_for_finish(
                submitted,
                canvas=canvas,
                store=store,
                clock=clock,
                give_up_after=give_up_after,
                api_interval=api_interval,
            )
        except CanvasError as exc:  # 401/403/404 while following: not a verdict on the import
            print(f"sis-consumer: could not follow the import: {exc}", file=sys.stderr)
            return EXIT_SUBMIT_FAILED
    print(json.dumps(result_summary(sis_import), indent=2))
    if outcome is None:
        print(f"sis-consumer: timed out after {args.timeout}; the import goes on in Canvas", file=sys.stderr)
    return exit_code(outcome)


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


def _positive_duration(option: str, text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{option}: {exc}") from exc
    if seconds <= 0:
        raise ConfigError(f"{option}: {text!r} is not more than zero")
    return seconds


async def _store(settings: Settings, args: argparse.Namespace) -> int:
    if args.store_command == "init":
        for line in await init_store(settings):
            print(line)
        return 0
    counts = await copy_store(settings, args.source, args.target)
    print(", ".join(f"{n} {what}" for what, n in sorted(counts.items())) or "nothing to copy")
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
        unfinished = await store.unfinished()
        histories = await store.histories()
        submissions = await store.submissions()
        results = await store.results()
    limits = settings.stuck_thresholds
    learned = {a: thresholds_for(h, limits, settings.learning) for a, h in histories.items()}
    stuck = stuck_imports(unfinished, now=datetime.now(UTC), limits=limits, by_account=learned)
    views = [
        import_view(
            r,
            None if (reason := stuck.get(r.key)) is None else reason.value,
            submissions.get(r.key),
            results.get(r.key),
        )
        for r in records
    ]
    print(json.dumps(views, indent=2) if as_json else table(views))
    return 0


if __name__ == "__main__":
    sys.exit(main())
