"""Stuck thresholds learned from each account's own history. Pure.

A fixed "running too long" of 2 h pages an account whose imports take 5 minutes an hour and
three quarters too late, and pages an account whose imports take 3 hours every night. So the
`running_too_long` and `never_started` thresholds of an account follow its own recent successful
imports: their slow end (`slow_end`: the largest once the largest tenth is set aside, so that one
unusual run does not raise the threshold for the next 30) times `MARGIN`, kept between a floor and
a ceiling. `never_started` learns how long an import waited once nothing of its account ran ahead
of it (`free_waits`): waiting behind the account's own imports is normal, and teaching it would
hide a stalled Canvas job queue for hours.

While an account has fewer successes than `Learning.after`, its pace is not known but its slowness
may be: the fixed threshold applies, raised to `FEW_MARGIN` times its slowest success, so that an
account of 3-hour imports is not paged at 2 h on each of its first nights (a fast one keeps the
fixed threshold until it has enough successes to be judged faster).

Only successes are learned from: a failure or an abort may end an import that was itself stuck
(an operator aborting it after hours), and learning from it would teach the account that being
stuck is normal.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from consumer.core.stuck import StuckThresholds
from consumer.core.tracker import SUCCEEDED, ImportRecord, Stage, stage_latencies

HISTORY_SIZE = 30
"""Successful runs kept per account: about a month of nightly imports."""
MARGIN = 2.0
"""How far past the account's slow end (`slow_end`) an import must run before it is stuck."""
FEW_MARGIN = 3.0
"""Before the account has enough successes: how far past its slowest (a wider margin)."""


@dataclass(frozen=True, slots=True)
class Run:
    """What one successful import tells about its account's pace."""

    sis_batch_id: int
    finished_at: datetime
    queued_seconds: float | None
    """`created` -> `importing`: how long Canvas took to pick it up (None: a state was not seen)."""
    importing_seconds: float | None
    """`importing` -> finished."""


@dataclass(frozen=True, slots=True)
class AccountHistory:
    last_success: datetime | None
    runs: tuple[Run, ...] = ()
    """The latest successful runs, newest first, at most `HISTORY_SIZE`."""


@dataclass(frozen=True, slots=True)
class Learning:
    after: int = 5
    """Successful runs an account needs before its thresholds are learned; 0 never learns."""
    floor: float = 900.0
    ceiling: float = 43200.0


def run_of(record: ImportRecord) -> Run | None:
    """The run a successful import adds to its account's history; None for any other import."""
    finished_at = record.finished_at
    if record.outcome not in SUCCEEDED or finished_at is None:
        return None
    stages = stage_latencies(record)
    return Run(record.sis_batch_id, finished_at, stages.get(Stage.QUEUED), stages.get(Stage.IMPORTING))


def remember(runs: Iterable[Run], size: int = HISTORY_SIZE) -> tuple[Run, ...]:
    """The latest `size` runs, newest first, each import once: what two records of one import say
    is merged (a stage time may become known after the finish was recorded). Idempotent and
    order-independent, so writers may append without reading."""
    kept: dict[int, Run] = {}
    for run in runs:
        seen = kept.get(run.sis_batch_id)
        kept[run.sis_batch_id] = run if seen is None else _merged(seen, run)
    return newest_first(kept.values(), size)


def _merged(a: Run, b: Run) -> Run:
    return Run(
        a.sis_batch_id,
        min(a.finished_at, b.finished_at),
        _larger(a.queued_seconds, b.queued_seconds),
        _larger(a.importing_seconds, b.importing_seconds),
    )


def _larger(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else max(a, b)


def newest_first(runs: Iterable[Run], size: int = HISTORY_SIZE) -> tuple[Run, ...]:
    ordered = sorted(runs, key=lambda r: (r.finished_at, r.sis_batch_id), reverse=True)
    return tuple(ordered[:size])


def slow_end(samples: Sequence[float]) -> float:
    """The largest sample once the largest tenth (at least one) is set aside: a value that was
    really observed, which a single slow run cannot set (with 30 runs, the 27th; with 5, the 4th).
    A slowness that recurs (a weekly full sync) is more than a tenth, and counts."""
    ordered = sorted(samples)
    set_aside = max(1, len(ordered) // 10) if len(ordered) > 1 else 0
    return ordered[-1 - set_aside]


def learned(samples: Sequence[float], fixed: float, learning: Learning) -> float:
    """A threshold from `samples` (seconds): learned from `learning.after` of them on; before,
    `fixed`, or `FEW_MARGIN` times the slowest sample (at most the ceiling) when that is more."""
    if learning.after == 0 or not samples:
        return fixed
    if len(samples) < learning.after:
        return max(fixed, min(learning.ceiling, max(samples) * FEW_MARGIN))
    return min(learning.ceiling, max(learning.floor, slow_end(samples) * MARGIN))


def free_waits(runs: Iterable[Run]) -> list[float]:
    """How long each run waited to start once nothing of its account ran ahead of it: from its
    creation, or from the latest finish of another run while it waited (Canvas runs an account's
    imports one at a time: one that finished meanwhile was ahead of it). Runs without both stage
    times say nothing."""
    runs = list(runs)
    finishes = [r.finished_at for r in runs]
    waits = []
    for run in runs:
        if run.queued_seconds is None or run.importing_seconds is None:
            continue
        started = run.finished_at - timedelta(seconds=run.importing_seconds)
        created = started - timedelta(seconds=run.queued_seconds)
        free_from = max([created, *(f for f in finishes if created < f <= started)])
        waits.append((started - free_from).total_seconds())
    return waits


def thresholds_for(history: AccountHistory, fixed: StuckThresholds, learning: Learning) -> StuckThresholds:
    """The account's thresholds: `running_too_long` from its importing times, `never_started` from
    how long its imports waited to start behind nothing; `orphaned` and `silent` stay fixed (they
    are about Canvas and the Live Events pipeline, not about the account's data)."""
    importing = [r.importing_seconds for r in history.runs if r.importing_seconds is not None]
    return replace(
        fixed,
        running_too_long=learned(importing, fixed.running_too_long, learning),
        never_started=learned(free_waits(history.runs), fixed.never_started, learning),
    )
