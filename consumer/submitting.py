"""Submit an SIS import and follow it: the library call behind `sis-consumer submit`.

The submission is written down before the POST and completed after it, so that a crash, a 400 or
a timeout leaves a trace, and so that the daemon can join the import's events to this file.
`prepare` checks a file and its options without sending anything (`submit --dry-run`).
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from consumer.core.drop_folder_rules import refused_by_canvas, unsafe
from consumer.core.file_type import FileTypeMismatch as FileTypeMismatch  # raised by `prepare`
from consumer.core.file_type import choose_extension
from consumer.core.sis_import import api_observation
from consumer.core.submission import ImportOptions as ImportOptions  # the library's API since 0.1
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import ALL_STATES, FINISHED, State, precedence
from consumer.errors import CanvasError, CanvasUnanswered
from consumer.ports import Canvas, CanvasAdmin, Clock, ImportStore, SubmissionStore

CONTENT_TYPES = {"zip": "application/zip", "csv": "text/csv", "xml": "text/xml"}


class OptionsRefused(ValueError):
    """Canvas would answer these options with a 400 (some of them after saving an orphaned batch)."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """A file checked and ready to POST."""

    file_name: str
    content: bytes
    options: ImportOptions
    """With `extension` filled in, from the file's bytes."""
    notes: tuple[str, ...] = ()
    """For the person: how the extension was chosen, what makes the options risky unattended."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()


def prepare(path: Path, options: ImportOptions) -> Prepared:
    """Read `path` and check it and `options` as Canvas would, sending nothing.

    Raises `OSError` (no such file...), `FileTypeMismatch` (the bytes are not what the name or
    `options.extension` says), `OptionsRefused` (Canvas would refuse the options).
    """
    content = path.read_bytes()
    extension, note = choose_extension(path.name, content, options.extension)
    refused = refused_by_canvas(options)
    if refused:
        raise OptionsRefused("; ".join(refused))
    notes = ([note] if note else []) + [f"warning: {reason}" for reason in unsafe(options)]
    return Prepared(path.name, content, replace(options, extension=extension), tuple(notes))


@dataclass(frozen=True, slots=True)
class Submitted:
    submission_id: int
    account: str
    account_id: str
    sis_import: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def sis_batch_id(self) -> int:
        return int(str(self.sis_import["id"]))


async def resolve_account(canvas: Canvas, store: SubmissionStore, account_ref: str) -> tuple[str, str]:
    """The root account's (UUID, local id), asked of Canvas once and cached in the store."""
    cached = await store.cached_account(canvas.base_url, account_ref)
    if cached is not None:
        return cached
    account = await canvas.account(account_ref)
    uuid, local_id = str(account.get("uuid") or ""), str(account.get("id") or "")
    if not uuid or not local_id:
        raise CanvasError(f"the accounts API gave no uuid/id for account {account_ref!r}")
    await store.cache_account(canvas.base_url, account_ref, uuid, local_id)
    return uuid, local_id


async def submit(
    path: Path,
    options: ImportOptions,
    *,
    canvas: Canvas,
    store: SubmissionStore,
    clock: Clock,
    account_ref: str = "self",
    raw: bool = False,
) -> Submitted:
    """POST `path` as an SIS import, recording the submission before and the answer after.

    `options.extension` defaults to what the file's bytes are; `FileTypeMismatch` when they
    contradict it or the file's name (nothing is sent)."""
    content = await asyncio.to_thread(path.read_bytes)
    extension, _ = choose_extension(path.name, content, options.extension)
    options = replace(options, extension=extension)
    return await submit_content(
        content, path.name, options, canvas=canvas, store=store, clock=clock, account_ref=account_ref, raw=raw
    )


async def submit_content(
    content: bytes,
    file_name: str,
    options: ImportOptions,
    *,
    canvas: Canvas,
    store: SubmissionStore,
    clock: Clock,
    account_ref: str = "self",
    raw: bool = False,
    source: SourceObject | None = None,
) -> Submitted:
    """POST `content` as an SIS import, recording the submission before and the answer after.

    With `source` (a drop-folder object), the record is also the claim on that object version:
    `AlreadySubmitted` when it was submitted before, and nothing is POSTed.
    """
    content_type = CONTENT_TYPES.get(options.extension or "", "application/zip")
    account, account_id = await resolve_account(canvas, store, account_ref)
    submission_id = await store.record_submission(
        Submission(
            canvas_url=canvas.base_url,
            account_ref=account_ref,
            account=account,
            account_id=account_id,
            file_name=file_name,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            options=MappingProxyType(options.params()),
            submitted_at=clock.now(),
            source=source,
        )
    )
    try:
        response = await canvas.create_sis_import(
            account_id,
            content,
            filename=file_name,
            params=options.params(),
            raw=raw,
            content_type=content_type,
        )
    except CanvasError as exc:
        status = SubmissionStatus.FAILED if exc.retryable else SubmissionStatus.REJECTED
        await store.answer_submission(
            submission_id,
            status=status,
            now=clock.now(),
            http_status=exc.status,
            error=str(exc),
            request_id=exc.request_id,
        )
        if exc.retryable and not exc.nothing_sent:  # a 5xx, a timeout: Canvas may have created it anyway
            raise CanvasUnanswered(str(exc), exc.status, exc.request_id) from exc
        raise
    sis_import = response.body if isinstance(response.body, dict) else {}
    obs = api_observation(sis_import, account=account, account_id=account_id, now=clock.now())
    await store.answer_submission(
        submission_id,
        status=SubmissionStatus.ACCEPTED,
        now=clock.now(),
        http_status=response.status,
        request_id=response.request_id,
        observation=obs,
    )
    if obs is None:
        raise CanvasError(f"Canvas accepted the import but its answer has no id/state: {sis_import!r:.200}")
    return Submitted(submission_id, account, account_id, MappingProxyType(sis_import))


EXIT_IMPORTED = 0
EXIT_FAILED = 1
EXIT_WITH_MESSAGES = 2
EXIT_TIMED_OUT = 3


def exit_code(outcome: State | None) -> int:
    if outcome is None:
        return EXIT_TIMED_OUT
    if outcome is State.IMPORTED:
        return EXIT_IMPORTED
    if outcome is State.IMPORTED_WITH_MESSAGES:
        return EXIT_WITH_MESSAGES
    return EXIT_FAILED


@dataclass(frozen=True, slots=True)
class Followed:
    """Where `wait_for_finish` left the import."""

    outcome: State | None
    """How it ended; None when it was still running at the deadline."""
    state: State
    """The latest state known: the store's or Canvas's answer, whichever is further along."""
    sis_import: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The SisImport as Canvas last answered (asked again at the end)."""


async def wait_for_finish(
    submitted: Submitted,
    *,
    canvas: Canvas,
    store: ImportStore,
    clock: Clock,
    give_up_after: float,
    api_interval: float = 30.0,
    store_interval: float = 1.0,
) -> Followed:
    """Follow the import until it finishes: from the store the daemon fills, and — in case no
    daemon runs — from the API every `api_interval`. Canvas is asked once more at the end, so the
    SisImport returned is as fresh as it can be."""
    deadline = time.monotonic() + give_up_after
    next_api = time.monotonic() + api_interval
    last: dict[str, Any] = dict(submitted.sis_import)
    outcome: State | None = None
    fresh = False
    while outcome is None:
        record = await store.record(submitted.account, submitted.sis_batch_id)
        if record is not None and record.outcome is not None:
            outcome = record.outcome
            break
        if time.monotonic() >= next_api:
            last, fresh = await _ask(canvas, submitted, last)
            next_api = time.monotonic() + api_interval
            obs = api_observation(
                last, account=submitted.account, account_id=submitted.account_id, now=clock.now()
            )
            if fresh and obs is not None:
                await store.apply(obs, clock.now())
                if obs.state in FINISHED:
                    outcome = obs.state
                    break
            fresh = False
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(store_interval, max(0.0, deadline - time.monotonic())))
    if not fresh:
        last, _ = await _ask(canvas, submitted, last)
    record = await store.record(submitted.account, submitted.sis_batch_id)
    known = [s for s in (outcome, None if record is None else record.state) if s is not None]
    known += [State(s) for s in (last.get("workflow_state"),) if s in ALL_STATES]
    state = max(known, key=precedence, default=State.CREATED)  # `submit` saw a state: never empty
    return Followed(outcome, state, MappingProxyType(last))


async def _ask(canvas: Canvas, submitted: Submitted, last: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The SisImport now, and True; or `last` and False when Canvas is down or throttling."""
    try:
        return await canvas.sis_import(submitted.account_id, submitted.sis_batch_id), True
    except CanvasError as exc:
        if not exc.retryable:
            raise
        return last, False


async def errors_csv(
    submitted: Submitted,
    sis_import: Mapping[str, Any],
    *,
    canvas: CanvasAdmin,
    give_up_after: float,
    interval: float = 2.0,
) -> bytes | None:
    """The import's errors CSV (every warning and error), or None when it has none.

    Canvas writes it in a job of its own after the final state, so a finished import with
    messages may not have it yet: ask again every `interval` for at most `give_up_after`
    (`TimeoutError` then).
    """
    deadline = time.monotonic() + give_up_after
    current: Mapping[str, Any] = sis_import
    while True:
        attachment = current.get("errors_attachment")
        if isinstance(attachment, Mapping) and attachment.get("url"):
            return await canvas.download(str(attachment["url"]))
        if not _has_messages(current):
            return None
        if time.monotonic() + interval > deadline:
            raise TimeoutError("Canvas has not written the errors CSV yet")
        await asyncio.sleep(interval)
        current, _ = await _ask(canvas, submitted, dict(current))


def _has_messages(sis_import: Mapping[str, Any]) -> bool:
    data = sis_import.get("data")
    counts = data.get("counts") if isinstance(data, Mapping) else None
    counted = counts if isinstance(counts, Mapping) else {}
    return bool(
        counted.get("warning_count")
        or counted.get("error_count")
        or sis_import.get("processing_warnings")
        or sis_import.get("processing_errors")
    )
