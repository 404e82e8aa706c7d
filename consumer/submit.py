"""Submit an SIS import and follow it: the library call behind `sis-consumer submit`.

The submission is written down before the POST and completed after it, so that a crash, a 400 or
a timeout leaves a trace, and so that the daemon can join the import's events to this file.
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

from consumer.core.sis_import import api_observation
from consumer.core.states import State, is_finished
from consumer.core.submission import ImportOptions as ImportOptions  # the library's API since 0.1
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.errors import CanvasError, CanvasUnanswered
from consumer.ports import Canvas, Clock, ImportStore, SubmissionStore

EXTENSIONS = {".zip": ("zip", "application/zip"), ".csv": ("csv", "text/csv"), ".xml": ("xml", "text/xml")}
CONTENT_TYPES = dict(EXTENSIONS.values())


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


def file_facts(path: Path) -> tuple[bytes, str]:
    content = path.read_bytes()
    return content, hashlib.sha256(content).hexdigest()


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
    """POST `path` as an SIS import, recording the submission before and the answer after."""
    extension, _ = EXTENSIONS.get(path.suffix.lower(), ("zip", "application/zip"))
    if options.extension is None:
        options = replace(options, extension=extension)
    content, _ = file_facts(path)
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


async def wait_for_finish(
    submitted: Submitted,
    *,
    canvas: Canvas,
    store: ImportStore,
    clock: Clock,
    give_up_after: float,
    api_interval: float = 30.0,
    store_interval: float = 1.0,
) -> tuple[State | None, dict[str, Any]]:
    """Follow the import until it finishes: from the store the daemon fills, and — in case no
    daemon runs — from the API every `api_interval`. Returns (outcome or None, last SisImport)."""
    deadline = time.monotonic() + give_up_after
    next_api = time.monotonic() + api_interval
    last: dict[str, Any] = dict(submitted.sis_import)
    while True:
        record = await store.record(submitted.account, submitted.sis_batch_id)
        if record is not None and record.outcome is not None:
            break
        if time.monotonic() >= next_api:
            try:
                last = await canvas.sis_import(submitted.account_id, submitted.sis_batch_id)
            except CanvasError as exc:
                if not exc.retryable:
                    raise
                # Canvas is down or throttling: keep following the store, ask again later.
                next_api = time.monotonic() + api_interval
                continue
            obs = api_observation(
                last, account=submitted.account, account_id=submitted.account_id, now=clock.now()
            )
            if obs is not None:
                await store.apply(obs, clock.now())
                if is_finished(obs.state):
                    return obs.state, last
            next_api = time.monotonic() + api_interval
        if time.monotonic() >= deadline:
            return None, last
        await asyncio.sleep(min(store_interval, max(0.0, deadline - time.monotonic())))
    try:
        last = await canvas.sis_import(submitted.account_id, submitted.sis_batch_id)
    except CanvasError as exc:
        if not exc.retryable:
            raise
    return record.outcome, last
