"""Stuck thresholds learned from each account's own history. Pure.

A fixed "running too long" of 2 h pages an account whose imports take 5 minutes an hour and
three quarters too late, and pages an account whose imports take 3 hours every night. So the
`running_too_long` and `never_started` thresholds of an account follow the recent distribution of
its own successful imports: a high quantile times a margin, kept between a floor and a ceiling.
While an account has too few successes to judge, its fixed thresholds apply.

Only successes are learned from: a failure or an abort may end an import that was itself stuck
(an operator aborting it after hours), and learning from it would teach the account that being
stuck is normal.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from consumer.core.stuck import StuckThresholds
from consumer.core.tracker import SUCCEEDED, ImportRecord, Stage, stage_latencies

HISTORY_SIZE = 30
"""Successful runs kept per account: about a month of nightly imports."""
QUANTILE = 0.99
MARGIN = 2.0
"""How far past the account's slow end (its p99) an import must run before it is stuck."""


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


def quantile(samples: Sequence[float], q: float) -> float:
    """The nearest-rank quantile: a value that was really observed (with 30 runs, p99 is the max)."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def learned(samples: Sequence[float], fixed: float, learning: Learning) -> float:
    """A threshold from `samples` (seconds), or `fixed` while there are fewer than `learning.after`."""
    if learning.after == 0 or len(samples) < learning.after:
        return fixed
    return min(learning.ceiling, max(learning.floor, quantile(samples, QUANTILE) * MARGIN))


def thresholds_for(history: AccountHistory, fixed: StuckThresholds, learning: Learning) -> StuckThresholds:
    """The account's thresholds: `running_too_long` from its importing times, `never_started` from
    how long its imports waited to start; `orphaned` and `silent` stay fixed (they are about
    Canvas and the Live Events pipeline, not about the account's data)."""
    importing = [r.importing_seconds for r in history.runs if r.importing_seconds is not None]
    queued = [r.queued_seconds for r in history.runs if r.queued_seconds is not None]
    return replace(
        fixed,
        running_too_long=learned(importing, fixed.running_too_long, learning),
        never_started=learned(queued, fixed.never_started, learning),
    )
