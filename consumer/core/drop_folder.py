"""The drop folder's judgements: is this object an SIS file we may submit, and what to write back
onto it (its tags) once the import is over. Pure: bytes and records in, verdicts out.

The bytes decide, not the name: a zip must open and hold at least one `.csv` with a row under its
header; a CSV must be UTF-8 text whose first line is a header. A file with no rows is refused as
empty: in batch mode it would ask Canvas to delete the whole term.
"""

from __future__ import annotations

import codecs
import io
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Final, Literal

from consumer.core.submission import Submission, SubmissionStatus
from consumer.core.tracker import ImportRecord

HEAD_BYTES: Final = 64 * 1024
"""How much of a CSV (or of each CSV in a zip) is read to judge it."""
PENDING_GIVE_UP: Final = timedelta(minutes=15)
"""A submission still unanswered this long was cut short (a crash mid-POST): its outcome is unknown."""
MAX_TAGS: Final = 10
"""S3 keeps at most ten tags per object."""
STATUS_TAG, BATCH_TAG, REASON_TAG = "sis-consumer-status", "sis-consumer-sis-batch-id", "sis-consumer-reason"


class IntakeResult(StrEnum):
    """What became of one object (or one notification): the `result` of `sis_consumer_intake_total`."""

    SUBMITTED = "submitted"
    DUPLICATE = "duplicate"
    """That object version was submitted before: a notification delivered twice, or to two replicas."""
    REFUSED_EMPTY = "refused_empty"
    REFUSED_NOT_SIS_FILE = "refused_not_sis_file"
    REFUSED_TOO_LARGE = "refused_too_large"
    REJECTED = "rejected"
    """Canvas answered the POST with a 4xx."""
    POST_FAILED = "post_failed"
    """The POST failed in a way that may have created an import (timeout, 5xx): not sent again."""
    RETRIED = "retried"
    """S3, the store or Canvas could not be used and nothing was submitted: the message comes back."""
    UNMATCHED = "unmatched"
    """No rule's prefix matches the key."""
    GONE = "gone"
    """The object was deleted before it could be read."""
    IGNORED = "ignored"
    """Not an upload: S3's test event, other event types, a folder placeholder."""
    INVALID = "invalid"
    """Not an S3 event notification."""


class Refusal(StrEnum):
    EMPTY = "empty"
    NOT_SIS_FILE = "not_sis_file"
    TOO_LARGE = "too_large"

    @property
    def result(self) -> IntakeResult:
        return IntakeResult(f"refused_{self.value}")


@dataclass(frozen=True, slots=True)
class Refused:
    reason: Refusal
    detail: str


@dataclass(frozen=True, slots=True)
class SisFile:
    extension: Literal["zip", "csv"]


def too_large(size: int, max_bytes: int) -> Refused | None:
    if size <= max_bytes:
        return None
    return Refused(Refusal.TOO_LARGE, f"{size} bytes, over the rule's limit of {max_bytes}")


def inspect(content: bytes) -> SisFile | Refused:
    """Whether `content` is a zip or a CSV Canvas can import, judged from its bytes."""
    if not content.strip():
        return Refused(Refusal.EMPTY, "the file is empty")
    if content.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return _zip(content)
    refused = _csv(content[:HEAD_BYTES], whole=len(content) <= HEAD_BYTES)
    return SisFile("csv") if refused is None else refused


def _zip(content: bytes) -> SisFile | Refused:
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            members = [
                i for i in archive.infolist() if not i.is_dir() and i.filename.lower().endswith(".csv")
            ]
            if not members:
                return Refused(Refusal.NOT_SIS_FILE, "a zip without a .csv file in it")
            verdicts = []
            for info in members:
                with archive.open(info) as member:
                    head = member.read(HEAD_BYTES)
                verdicts.append(_csv(head, whole=info.file_size <= HEAD_BYTES, name=info.filename))
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError) as exc:
        # RuntimeError: encrypted; NotImplementedError: a compression method zipfile lacks.
        return Refused(Refusal.NOT_SIS_FILE, f"a zip that cannot be read: {exc}")
    broken = [v for v in verdicts if v is not None and v.reason is Refusal.NOT_SIS_FILE]
    if broken:
        return broken[0]
    if all(v is not None for v in verdicts):
        return Refused(Refusal.EMPTY, "no .csv in the zip has a row under its header")
    return SisFile("zip")


def _csv(head: bytes, *, whole: bool, name: str = "the file") -> Refused | None:
    """None when `head` (the start of a CSV, or all of it) is UTF-8 text with a header and a row."""
    if b"\x00" in head:
        return Refused(Refusal.NOT_SIS_FILE, f"{name} is binary, neither a zip nor a CSV")
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=whole)
    except UnicodeDecodeError:
        return Refused(Refusal.NOT_SIS_FILE, f"{name} is not UTF-8 text, as Canvas requires")
    lines = [line for line in text.removeprefix("\ufeff").splitlines() if line.strip()]
    if not lines:
        return Refused(Refusal.EMPTY, f"{name} is empty")
    if "," not in lines[0]:
        return Refused(Refusal.NOT_SIS_FILE, f"the first line of {name} is not a CSV header")
    if len(lines) < 2:
        return Refused(Refusal.EMPTY, f"{name} has a header and no rows")
    return None


@dataclass(frozen=True, slots=True)
class Report:
    """What is written back onto a submitted object once its outcome is known."""

    status: str
    tags: Mapping[str, str]


def report_for(submission: Submission, record: ImportRecord | None, now: datetime) -> Report | None:
    """The report of a drop-folder submission, or None while its import is still running."""
    batch = submission.sis_batch_id
    if submission.status is SubmissionStatus.ACCEPTED:
        if record is None or record.outcome is None:
            return None
        return _report(record.outcome.value, batch)
    if submission.status is SubmissionStatus.REJECTED:
        return _report("rejected", batch, f"canvas_{submission.http_status or 'error'}")
    if submission.status is SubmissionStatus.FAILED:
        return _report("post_failed", batch, f"canvas_{submission.http_status or 'unreachable'}")
    if now - submission.submitted_at >= PENDING_GIVE_UP:
        return _report("unknown", batch, "no_answer_recorded")
    return None


def refusal_tags(refused: Refused) -> dict[str, str]:
    return dict(_report("refused", None, refused.reason.value).tags)


def _report(status: str, batch: int | None, reason: str | None = None) -> Report:
    tags = {STATUS_TAG: status}
    if batch is not None:
        tags[BATCH_TAG] = str(batch)
    if reason is not None:
        tags[REASON_TAG] = reason
    return Report(status, tags)


def merged_tags(existing: Mapping[str, str], ours: Mapping[str, str]) -> dict[str, str]:
    """The object's tags with ours replacing our earlier ones. The SIS team's own tags are kept:
    when S3's limit of ten leaves no room, ours go in order (the status first) while they fit."""
    kept = {k: v for k, v in existing.items() if k not in (STATUS_TAG, BATCH_TAG, REASON_TAG)}
    for key, value in ours.items():
        if len(kept) < MAX_TAGS:
            kept[key] = value
    return kept
