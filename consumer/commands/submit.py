"""`sis-consumer submit`: POST an SIS import, by hand or from cron, and say how it went: a few
lines to paste into a ticket (or Canvas's whole SisImport with `--json`), and an exit code that
tells every outcome and every mistake apart (`submit_help.EXIT_CODES`)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.commands.access import token_access
from consumer.commands.arguments import duration, whole_number
from consumer.commands.submit_help import (
    EXIT_BAD_FILE,
    EXIT_CANVAS_REFUSED,
    EXIT_CONFIG,
    EXIT_NO_FILE,
    EXIT_STORE,
    EXIT_USAGE,
    OPTION_HELP,
    exit_code_table,
)
from consumer.config import Settings, from_env
from consumer.core.links import canvas_origin, links_json
from consumer.core.sis_import import result_summary
from consumer.errors import CanvasError, CanvasUnanswered, ConfigError, StoreUnavailable
from consumer.ports import Store, SystemClock
from consumer.stores import open_store
from consumer.submitting import (
    FileTypeMismatch,
    Followed,
    ImportOptions,
    OptionsRefused,
    Prepared,
    Submitted,
    errors_csv,
    exit_code,
    prepare,
    submit_content,
    wait_for_finish,
)

WIDTH = 100
"""The longest line of the summary: a warning's message is cut to fit."""
CSV_WAIT_LIMIT = 600.0
"""How long, at most, to wait after the finish for Canvas to write the errors CSV."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "POST FILE to Canvas's SIS Imports API and record the submission in the store (the "
        "daemon joins the import's Live Events to it). Prints a short summary; --wait follows the "
        "import to its end. Needs SIS_CONSUMER_CANVAS_URL and SIS_CONSUMER_CANVAS_TOKEN[_FILE]."
    )
    parser.epilog = exit_code_table()
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("file", type=Path, help="the SIS file: a zip of CSV files, a CSV file, or XML")
    parser.add_argument(
        "--account-id", default="self", help="the root account: self (the token's, the default) or its id"
    )
    parser.add_argument("--raw", action="store_true", help="send the file as the request body, not multipart")
    parser.add_argument("--wait", action="store_true", help="follow the import until it finishes")
    parser.add_argument(
        "--timeout",
        type=duration,
        default=7200.0,
        metavar="DURATION",
        help="with --wait: give up after this long (default 2h)",
    )
    parser.add_argument(
        "--api-interval",
        type=duration,
        default=30.0,
        metavar="DURATION",
        help="with --wait: ask Canvas this often, in case no daemon fills the store (default 30s)",
    )
    parser.add_argument(
        "--errors-csv",
        type=Path,
        metavar="FILE",
        help="with --wait: save the import's errors CSV (every warning and error) to FILE",
    )
    parser.add_argument("--json", action="store_true", help="print Canvas's whole SisImport as JSON instead")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="check the file, the options and the token (which account, whether it may import); send nothing",
    )
    options = parser.add_argument_group("Canvas import options (the SIS Imports API's, by the same names)")
    for f in fields(ImportOptions):
        flag = "--" + f.name.replace("_", "-")
        if f.type == "bool":
            options.add_argument(flag, action="store_true", dest=f.name, help=OPTION_HELP[f.name])
        elif f.name == "extension":
            options.add_argument(flag, dest=f.name, choices=["zip", "csv", "xml"], help=OPTION_HELP[f.name])
        else:
            kind: Any = str
            if f.name == "change_threshold":
                kind = whole_number(1, 100)
            elif "int" in str(f.type):
                kind = whole_number(1)
            options.add_argument(flag, dest=f.name, type=kind, metavar="VALUE", help=OPTION_HELP[f.name])


def _fail(code: int, message: str) -> int:
    print(f"sis-consumer: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    if args.errors_csv is not None and not (args.wait or args.dry_run):
        return _fail(EXIT_USAGE, "--errors-csv needs --wait: Canvas writes the CSV once the import is over")
    try:
        settings = from_env(environ)
    except ConfigError as exc:
        return _fail(EXIT_CONFIG, "invalid configuration:\n  " + "\n  ".join(str(exc).splitlines()))
    if not settings.canvas_url or settings.canvas_token is None:
        return _fail(
            EXIT_CONFIG, "submit needs SIS_CONSUMER_CANVAS_URL and SIS_CONSUMER_CANVAS_TOKEN (or _TOKEN_FILE)"
        )
    options = ImportOptions(**{f.name: getattr(args, f.name) for f in fields(ImportOptions)})
    try:
        prepared = prepare(args.file, options)
    except FileTypeMismatch as exc:
        return _fail(EXIT_BAD_FILE, f"{exc}; nothing was sent")
    except OptionsRefused as exc:
        return _fail(EXIT_USAGE, f"{exc}; nothing was sent")
    except OSError as exc:
        return _fail(EXIT_NO_FILE, f"{args.file}: {exc.strerror or exc}; nothing was sent")
    for note in prepared.notes:
        print(f"sis-consumer: {note}", file=sys.stderr)
    try:
        return asyncio.run(_submit(settings, args, prepared))
    except StoreUnavailable as exc:
        return _fail(EXIT_STORE, str(exc))


async def _submit(settings: Settings, args: argparse.Namespace, prepared: Prepared) -> int:
    assert settings.canvas_url is not None
    assert settings.canvas_token is not None
    async with open_canvas(
        settings.canvas_url, settings.canvas_token, request_seconds=settings.canvas_timeout
    ) as canvas:
        if args.dry_run:
            return await _dry_run(canvas, args.account_id, prepared)
        async with open_store(settings) as store:
            return await _post(canvas, store, args, prepared)


async def _dry_run(canvas: CanvasClient, account_ref: str, prepared: Prepared) -> int:
    try:
        access = await token_access(canvas, account_ref)
    except CanvasError as exc:
        return _fail(EXIT_CANVAS_REFUSED, f"dry run: Canvas would not show account {account_ref}: {exc}")
    options = " ".join(f"{k}={v}" for k, v in sorted(prepared.options.params().items()))
    lines = [
        "dry run: nothing was sent",
        f"  file: {prepared.file_name}, {prepared.options.extension}, {len(prepared.content)} bytes, "
        f"sha256 {prepared.sha256[:16]}…",
        f"  options: {options}",
        f"  account: {access.account_id} {access.name} "
        f"({'root account' if access.root else 'NOT a root account'}, uuid {access.uuid})",
        "  token: "
        + ("may use the SIS Imports API" if access.refused is None else f"refused: {access.refused}"),
        f"  would POST {canvas_origin(canvas.base_url)}/api/v1/accounts/{access.account_id}/sis_imports",
    ]
    print("\n".join(lines))
    return 0 if access.may_import else EXIT_CANVAS_REFUSED


async def _post(canvas: CanvasClient, store: Store, args: argparse.Namespace, prepared: Prepared) -> int:
    clock = SystemClock()
    started = time.monotonic()
    try:
        submitted = await submit_content(
            prepared.content,
            prepared.file_name,
            prepared.options,
            canvas=canvas,
            store=store,
            clock=clock,
            account_ref=args.account_id,
            raw=args.raw,
        )
    except CanvasUnanswered as exc:
        return _fail(
            EXIT_CANVAS_REFUSED,
            f"Canvas did not answer the import's POST ({exc}), but may have created the import: "
            "look for it (`sis-consumer imports`, the Canvas UI) before submitting again",
        )
    except CanvasError as exc:
        return _fail(EXIT_CANVAS_REFUSED, f"Canvas did not take the import: {exc}")
    links = links_json(canvas.base_url, submitted.account_id, submitted.sis_batch_id)
    if not args.wait:
        _show(args, submitted.sis_import, created_lines(submitted, prepared, links))
        return 0
    print(
        f"sis-consumer: SIS import {submitted.sis_batch_id} created, waiting for it to finish...",
        file=sys.stderr,
    )
    try:
        followed = await wait_for_finish(
            submitted,
            canvas=canvas,
            store=store,
            clock=clock,
            give_up_after=args.timeout,
            api_interval=args.api_interval,
        )
    except CanvasError as exc:  # 401/403/404 while following: not a verdict on the import
        return _fail(EXIT_CANVAS_REFUSED, f"could not follow SIS import {submitted.sis_batch_id}: {exc}")
    csv_note = None
    if args.errors_csv is not None and followed.outcome is not None:
        left = args.timeout - (time.monotonic() - started)
        csv_note = await _save_errors_csv(
            canvas, submitted, followed, args.errors_csv, left, args.api_interval
        )
    elapsed = time.monotonic() - started
    _show(args, followed.sis_import, finished_lines(submitted, prepared, followed, elapsed, links, csv_note))
    if followed.outcome is None:
        print(
            f"sis-consumer: timed out after {_human(args.timeout)}; the import goes on in Canvas",
            file=sys.stderr,
        )
    return exit_code(followed.outcome)


async def _save_errors_csv(
    canvas: CanvasClient, submitted: Submitted, followed: Followed, path: Path, left: float, interval: float
) -> str:
    """Download the errors CSV into `path`; what became of it, for the summary."""
    wait = min(max(left, 30.0), CSV_WAIT_LIMIT)
    try:
        data = await errors_csv(
            submitted, followed.sis_import, canvas=canvas, give_up_after=wait, interval=min(interval, 5.0)
        )
    except TimeoutError:
        return f"not written by Canvas within {_human(wait)}; not saved"
    except CanvasError as exc:
        return f"could not be downloaded: {exc}"
    if data is None:
        return "none: the import had no warnings or errors (no file written)"
    await asyncio.to_thread(path.write_bytes, data)
    rows = data.count(b"\n")
    return f"saved to {path} ({rows} lines)"


def _show(args: argparse.Namespace, sis_import: Mapping[str, Any], lines: list[str]) -> None:
    print(json.dumps(dict(sis_import), indent=2) if args.json else "\n".join(lines))


def _human(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:.0f}s" if seconds >= 1 else f"{seconds:g}s"


def _cut(text: str, width: int = WIDTH) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _links(links: dict[str, str] | None) -> list[str]:
    if links is None:
        return []
    return [f"  Canvas: {links['canvas']}", f"  API:    {links['api']}"]


def created_lines(submitted: Submitted, prepared: Prepared, links: dict[str, str] | None) -> list[str]:
    state = submitted.sis_import.get("workflow_state")
    return [
        f"SIS import {submitted.sis_batch_id} created from {prepared.file_name} "
        f"({prepared.options.extension}, account {submitted.account_id}): {state}",
        *_links(links),
    ]


def finished_lines(
    submitted: Submitted,
    prepared: Prepared,
    followed: Followed,
    elapsed: float,
    links: dict[str, str] | None,
    csv_note: str | None,
) -> list[str]:
    head = f"SIS import {submitted.sis_batch_id} {followed.state.value}: {prepared.file_name}, "
    if followed.outcome is None:
        lines = [head + f"still unfinished after {_human(elapsed)}: stopped waiting"]
    else:
        lines = [head + f"after {_human(elapsed)}"]
    summary = result_summary(followed.sis_import)
    if followed.outcome is not None and summary["workflow_state"] != followed.outcome.value:
        lines.append("  counts: not known (Canvas could not be asked again)")
    else:
        lines += _result_lines(summary)
    if csv_note is not None:
        lines.append(f"  errors CSV: {csv_note}")
    elif summary["warning_count"] or summary["error_count"]:
        written = (
            "written" if summary["errors_attachment"] else "not written yet (Canvas writes it after the end)"
        )
        lines.append(f"  errors CSV: {written}; --errors-csv FILE saves it")
    return lines + _links(links)


def _result_lines(summary: dict[str, Any]) -> list[str]:
    lines = []
    counts = {
        k: v
        for k, v in summary["counts"].items()
        if v and k not in {"warning_count", "error_count"} and k not in summary["deleted"]
    }
    if counts:
        lines.append(_cut("  counts: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))))
    deleted = {k: v for k, v in summary["deleted"].items() if v}
    if deleted:
        lines.append(_cut("  deleted: " + ", ".join(f"{k} {v}" for k, v in sorted(deleted.items()))))
    warnings, errors = summary["warning_count"], summary["error_count"]
    if warnings or errors:
        lines.append(f"  {warnings} warning{'s' * (warnings != 1)}, {errors} error{'s' * (errors != 1)}")
    for kind, rows in (("error", summary["first_errors"]), ("warning", summary["first_warnings"])):
        lines += [_cut(f"    {kind}: " + ": ".join(str(part) for part in row)) for row in rows]
    return lines
