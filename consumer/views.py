"""How an import is shown to people and scripts (`sis-consumer imports`). Pure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consumer.core.states import State
from consumer.core.submission import SourceObject, Submission
from consumer.core.tracker import ImportRecord
from consumer.observability.logging import redact_text


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")


def created_at(record: ImportRecord) -> datetime:
    """When Canvas created the batch, as well as we know it."""
    times = record.stage_times
    return min(
        (t for t in (times.get(State.INITIALIZING), times.get(State.CREATED)) if t is not None),
        default=record.submitted_at or record.first_seen_at,
    )


def submission_view(submission: Submission | None) -> dict[str, Any] | None:
    if submission is None:
        return None
    return {
        "file_name": submission.file_name,
        "size": submission.size,
        "sha256": submission.sha256,
        "options": dict(submission.options),
        "submitted_at": _iso(submission.submitted_at),
        "status": submission.status.value,
        "http_status": submission.http_status,
        "error": submission.error,
        "request_id": submission.request_id,
        "source": None if submission.source is None else source_view(submission.source, submission.reported),
    }


def source_view(source: SourceObject, reported: str | None) -> dict[str, Any]:
    """The drop-folder object a submission was read from, and what was written back onto it."""
    return {
        "bucket": source.bucket,
        "key": source.key,
        "version_id": source.version_id,
        "etag": source.etag,
        "reported": reported,
    }


def import_view(
    record: ImportRecord,
    stuck: str | None = None,
    submission: Submission | None = None,
    result: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The public JSON shape of one import: what `sis-consumer imports --json` prints (README, "Commands")."""
    duration = record.duration_seconds
    return {
        "account": record.account,
        "account_id": record.account_id,
        "sis_batch_id": record.sis_batch_id,
        "state": record.state.value,
        "outcome": None if record.outcome is None else record.outcome.value,
        "origin": record.origin.value,
        "created_at": _iso(created_at(record)),
        "finished_at": _iso(record.finished_at),
        "duration_seconds": None if duration is None else round(duration, 3),
        "stuck": stuck,
        "submitted_at": _iso(record.submitted_at),
        "first_seen_at": _iso(record.first_seen_at),
        "last_news_at": _iso(record.last_news_at),
        "stage_times": {state.value: _iso(at) for state, at in sorted(record.stage_times.items())},
        "request_id": record.request_id,
        "started_by": {
            "developer_key_id": record.developer_key_id,
            "user_agent": None if record.user_agent is None else redact_text(record.user_agent),
        },
        "submission": submission_view(submission),
        "result": result,
    }


def table(views: list[dict[str, Any]]) -> str:
    """A fixed-width table for terminals."""
    header = ("ACCOUNT", "BATCH", "STATE", "ORIGIN", "CREATED", "DURATION", "STUCK")
    rows = [
        (
            str(v["account"])[:13],
            str(v["sis_batch_id"]),
            str(v["state"]),
            str(v["origin"]),
            str(v["created_at"] or "")[:19],
            "" if v["duration_seconds"] is None else f"{v['duration_seconds']:.0f}s",
            v["stuck"] or "",
        )
        for v in views
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]
    )
