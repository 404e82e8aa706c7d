"""Joining an import to the submission that created it. Pure: stores find and save, this decides.

Two keys lead from an import to our submission, whichever side is recorded first: the import's
`(account, sis_batch_id)` once the POST's answer named it, and the POST's `X-Request-Context-Id`,
which Canvas repeats as `metadata.request_id` in the import's first two events. The second key is
the only one a 400 has: Canvas may have saved a batch (an orphaned `initializing`) before
refusing the request, and the answer carries no id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from consumer.core.submission import Submission
from consumer.core.tracker import (
    Applied,
    ImportRecord,
    Observation,
    Origin,
    Verdict,
    apply,
    effects_between,
    mark_submitted,
)


def wants_submission(record: ImportRecord) -> bool:
    """Whether the store should look for this import's submission: it is not known to be ours."""
    return record.origin is not Origin.SUBMITTED


def creator(candidates: Iterable[Submission], record: ImportRecord) -> Submission | None:
    """The submission that created this import, among candidates the store found by either key:
    the earliest one Canvas answered that names this import or the request that created it."""
    for submission in sorted(candidates, key=lambda s: s.id or 0):
        if not submission.joinable:
            continue
        if (submission.account, submission.sis_batch_id) == record.key or (
            submission.request_id is not None and submission.request_id == record.request_id
        ):
            return submission
    return None


def join_event(
    old: ImportRecord | None, result: Applied, submission: Submission | None, now: datetime
) -> Applied:
    """An observation's result, marked ours when `submission` created the import.

    The effects are recomputed from `old`, so joining in the same write as the observation
    reports each fact once.
    """
    if submission is None or not wants_submission(result.record):
        return result
    joined = mark_submitted(result.record, submission.submitted_at, now).record
    return Applied(joined, result.verdict, effects_between(old, joined))


def join_answer(
    old: ImportRecord | None, obs: Observation | None, submitted_at: datetime, now: datetime
) -> Applied:
    """The POST's answer: the import it created (`obs`, from the answer) as ours.

    Without `obs` (a 400) only an import already known by the request id can be joined; then
    `old` is that import.
    """
    if obs is None:
        if old is None:
            raise ValueError("join_answer needs the answer's observation or a known import")
        return mark_submitted(old, submitted_at, now)
    record = apply(old, obs, now).record
    record = mark_submitted(record, submitted_at, now).record
    return Applied(record, Verdict.APPLIED, effects_between(old, record))
