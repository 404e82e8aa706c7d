"""When an unfinished import is stuck, and why: the cases that page (README, "Stuck imports and
reconciliation").

Canvas runs one import per root account at a time, so waiting behind a running import is normal;
waiting behind nothing is not, and only that wait counts towards `never_started`: from the import's
creation, or from when its account was last seen busy (`free_since`), whichever is later. Times in
a state come from Canvas's clock (event or API timestamps); `now` is ours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from consumer.core.tracker import AT_REST, RUNNING, ImportRecord, Origin, State


class StuckReason(StrEnum):
    NEVER_STARTED = "never_started"
    RUNNING_TOO_LONG = "running_too_long"
    ORPHANED = "orphaned"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class StuckVerdict:
    """What the daemon's watchdog recorded: why an import is stuck, and since when it says so."""

    reason: StuckReason
    since: datetime
    """When the watchdog first judged it stuck for this reason (our clock)."""


def verdicts_changed(
    recorded: Mapping[tuple[str, int], StuckVerdict],
    current: Mapping[tuple[str, int], StuckReason],
    now: datetime,
) -> tuple[dict[tuple[str, int], StuckVerdict], set[tuple[str, int]]]:
    """What to write so that `recorded` says `current`: the verdicts to put (new, or a new
    reason, since `now`) and the keys to remove (recovered)."""
    put = {
        key: StuckVerdict(reason, now)
        for key, reason in current.items()
        if key not in recorded or recorded[key].reason is not reason
    }
    return put, set(recorded) - set(current)


@dataclass(frozen=True, slots=True)
class StuckThresholds:
    never_started: float = 1800.0
    running_too_long: float = 7200.0
    orphaned: float = 900.0
    silent: float = 300.0


def _age(since: datetime | None, now: datetime) -> float:
    return 0.0 if since is None else (now - since).total_seconds()


def stuck_reason(
    record: ImportRecord,
    *,
    now: datetime,
    account_busy: bool,
    limits: StuckThresholds,
    free_since: datetime | None = None,
) -> StuckReason | None:
    """Why this import is stuck, or None. `account_busy`: another import of its account runs;
    `free_since`: when one last ran (an import queued behind it waited for it, not for Canvas)."""
    if record.state in AT_REST or record.state is State.RESTORING:
        return None
    if (
        record.origin is Origin.SUBMITTED
        and record.last_event_at is None
        and _age(record.submitted_at, now) > limits.silent
    ):
        return StuckReason.SILENT
    times = record.stage_times
    if record.state is State.INITIALIZING and _age(times[State.INITIALIZING], now) > limits.orphaned:
        return StuckReason.ORPHANED
    if record.state in RUNNING:
        since = times.get(State.IMPORTING) or times[record.state]
        if _age(since, now) > limits.running_too_long:
            return StuckReason.RUNNING_TOO_LONG
        return None
    waiting_since = min(times.values())
    if free_since is not None and free_since > waiting_since:
        waiting_since = free_since
    if not account_busy and _age(waiting_since, now) > limits.never_started:
        return StuckReason.NEVER_STARTED
    return None


def running_imports(
    unfinished: Iterable[ImportRecord],
    *,
    now: datetime,
    limits: StuckThresholds,
    by_account: Mapping[str, StuckThresholds] | None = None,
) -> dict[str, set[int]]:
    """Per account, the imports that make it busy: running, and not running too long.

    An import running too long is probably dead (a silent abort, a job that died): it does not
    make its account busy, or one dead import would hide every later one that never starts.
    """
    by_account = by_account or {}
    running: dict[str, set[int]] = {}
    for r in unfinished:
        verdict = stuck_reason(r, now=now, account_busy=True, limits=by_account.get(r.account, limits))
        if r.state in RUNNING and verdict is not StuckReason.RUNNING_TOO_LONG:
            running.setdefault(r.account, set()).add(r.sis_batch_id)
    return running


def stuck_imports(
    unfinished: Iterable[ImportRecord],
    *,
    now: datetime,
    limits: StuckThresholds,
    by_account: Mapping[str, StuckThresholds] | None = None,
    free_since: Mapping[str, datetime] | None = None,
) -> dict[tuple[str, int], StuckReason]:
    """Judge every unfinished import against the others of its account (`running_imports`), with
    its account's own thresholds (`by_account`, see `core.learned`) or else `limits`, and its
    wait counted from when the account was last busy (`free_since`, per account)."""
    by_account, free_since = by_account or {}, free_since or {}
    records = list(unfinished)
    running = running_imports(records, now=now, limits=limits, by_account=by_account)
    verdicts: dict[tuple[str, int], StuckReason] = {}
    for r in records:
        busy = bool(running.get(r.account, set()) - {r.sis_batch_id})
        reason = stuck_reason(
            r,
            now=now,
            account_busy=busy,
            limits=by_account.get(r.account, limits),
            free_since=free_since.get(r.account),
        )
        if reason is not None:
            verdicts[r.key] = reason
    return verdicts


def finished_unseen(record: ImportRecord, *, silent_after: float) -> bool:
    """A finished import no Live Event ever spoke of, although the finish was recorded more than
    `silent_after` after we first knew of the import: its events had time to come and did not.

    The sign of a broken Live Events pipeline that the reconciler cannot hide: the reconciler
    finishes such imports from the API, so they never stay `silent` long enough to page. A finish
    recorded sooner (`submit --wait` asking the API within seconds) proves nothing either way.
    """
    if record.outcome is None or record.last_event_at is not None:
        return False
    known_since = record.submitted_at or record.first_seen_at
    return _age(known_since, record.last_news_at) > silent_after
