"""How an import is shown to people and scripts (`sis-consumer imports`). Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from consumer.core.links import links_json
from consumer.core.stuck import StuckVerdict
from consumer.core.submission import SourceObject, Submission
from consumer.core.tracker import AT_REST, ImportRecord, State
from consumer.redaction import redact_text


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
    stuck: StuckVerdict | None = None,
    submission: Submission | None = None,
    result: dict[str, Any] | None = None,
    canvas_url: str | None = None,
) -> dict[str, Any]:
    """The public JSON shape of one import (`sis-consumer imports --json`). `stuck`: the verdict
    the daemon recorded (shown only while the record is unfinished: a verdict left behind by a
    daemon that stopped before the import finished is no longer true)."""
    duration = record.duration_seconds
    if stuck is not None and record.state in AT_REST:
        stuck = None
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
        "stuck": None if stuck is None else stuck.reason.value,
        "stuck_since": None if stuck is None else _iso(stuck.since),
        "links": links_json(canvas_url, record.account_id, record.sis_batch_id),
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


def _duration(view: dict[str, Any]) -> str:
    return "" if view["duration_seconds"] is None else f"{view['duration_seconds']:.0f}s"


def _grid(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in [header, *rows]]


def table(views: list[dict[str, Any]]) -> str:
    """A fixed-width table for terminals; below it, each account's SIS import page in Canvas."""
    header = ("ACCOUNT", "ACCOUNT ID", "BATCH", "STATE", "ORIGIN", "CREATED", "DURATION", "STUCK", "API URL")
    rows = [
        (
            str(v["account"])[:8] + "…",
            v["account_id"] or "",
            str(v["sis_batch_id"]),
            str(v["state"]),
            str(v["origin"]),
            str(v["created_at"] or "")[:19],
            _duration(v),
            v["stuck"] or "",
            (v["links"] or {}).get("api", ""),
        )
        for v in views
    ]
    pages = sorted({(v["account_id"], v["links"]["canvas"]) for v in views if v["links"]})
    footer = [f"Canvas: account {account_id}: {page}" for account_id, page in pages]
    return "\n".join(_grid(header, rows) + (["", *footer] if footer else []))


def compact(views: list[dict[str, Any]], now: datetime, rows: int) -> str:
    """`imports --watch`: one line of totals, then the imports that matter most first (stuck,
    then running and waiting, then the newest finished), as many as fit in `rows` lines."""
    unfinished = [v for v in views if State(v["state"]) not in AT_REST]
    stuck = [v for v in unfinished if v["stuck"]]
    shown = stuck + [v for v in unfinished if not v["stuck"]] + [v for v in views if v not in unfinished]
    finished = {v["outcome"] for v in views if v["outcome"]}
    outcomes = ", ".join(f"{sum(1 for v in views if v['outcome'] == o)} {o}" for o in sorted(finished))
    head = (
        f"sis-consumer imports  {now:%Y-%m-%d %H:%M:%S}Z  {len(unfinished)} unfinished, "
        f"{len(stuck)} stuck" + (f"; {outcomes}" if outcomes else "")
    )

    def age(v: dict[str, Any]) -> str:
        if v["duration_seconds"] is not None:
            return _duration(v)
        started = datetime.fromisoformat(str(v["created_at"]).replace("Z", "+00:00"))
        return f"{(now - started).total_seconds():.0f}s"

    header = ("BATCH", "ACCOUNT ID", "STATE", "TIME", "STUCK", "ORIGIN")
    body = [
        (str(v["sis_batch_id"]), v["account_id"] or "", v["state"], age(v), v["stuck"] or "", v["origin"])
        for v in shown[: max(0, rows - 2)]
    ]
    return "\n".join([head, *_grid(header, body)])
