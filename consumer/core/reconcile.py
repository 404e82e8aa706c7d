"""Which imports to look up in Canvas, and what the answer meant. Pure.

Events are hints (docs/canvas.md, "States, and the ones that send no event"): no event for
`aborted` or `cleanup_batch`, and any event may be lost. An unfinished import with no news for
`reconcile_after` is asked about, oldest news first, and not asked about again for another
`reconcile_after`, so a backlog (after an outage) drains at the pace the caller allows instead of
in a burst.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from consumer.core.tracker import Applied, Finished, ImportRecord, Verdict


class ReconcileResult(StrEnum):
    UNCHANGED = "unchanged"
    ADVANCED = "advanced"
    FINISHED_SILENTLY = "finished_silently"
    NOT_FOUND = "not_found"
    ERROR = "error"


def due_for_check(
    unfinished: Iterable[ImportRecord],
    *,
    account: str,
    now: datetime,
    reconcile_after: float,
    last_checked: Mapping[tuple[str, int], datetime],
) -> list[ImportRecord]:
    """Imports of `account` with no news (and no check) for `reconcile_after`, stalest first."""
    due = []
    for record in unfinished:
        if record.account != account:
            continue
        checked = last_checked.get(record.key)
        quiet_since = max(record.last_news_at, checked) if checked else record.last_news_at
        if (now - quiet_since).total_seconds() >= reconcile_after:
            due.append((quiet_since, record.sis_batch_id, record))
    return [record for _, _, record in sorted(due, key=lambda item: (item[0], item[1]))]


def classify(applied: Applied) -> ReconcileResult:
    if any(isinstance(e, Finished) for e in applied.effects):
        return ReconcileResult.FINISHED_SILENTLY
    if applied.verdict is Verdict.APPLIED:
        return ReconcileResult.ADVANCED
    return ReconcileResult.UNCHANGED


MAX_PACE = 60.0
"""The longest wait between two requests, however low the bucket reads."""


def pace(spacing: float, remaining: float | None, most_remaining: float | None) -> float:
    """Seconds to wait before the next request: `spacing`, stretched as Canvas's bucket runs low.

    Canvas does not say how fast its leaky bucket drains (docs/canvas.md, "Throttling"), only what is left
    (`X-Rate-Limit-Remaining`). Waiting `spacing * most_remaining / remaining` slows down as the
    bucket fills and settles where what we spend equals what leaks, well before it is full: a
    backlog drains at the bucket's pace, whatever `spacing` says, without a 403/429.
    """
    if remaining is None or not most_remaining:
        return spacing
    return min(MAX_PACE, max(spacing, spacing * most_remaining / max(remaining, 1.0)))
