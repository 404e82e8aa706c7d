"""Thresholds learned from an account's own history: each rule just below and just above its edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consumer.core.learned import (
    HISTORY_SIZE,
    AccountHistory,
    Learning,
    Run,
    free_waits,
    learned,
    remember,
    run_of,
    slow_end,
    thresholds_for,
)
from consumer.core.stuck import StuckReason, StuckThresholds, stuck_imports
from consumer.core.tracker import ImportRecord, Observation, State, apply

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
FIXED = StuckThresholds(never_started=1800, running_too_long=7200, orphaned=900, silent=300)
LEARNING = Learning(after=5, floor=900, ceiling=43200)


def runs(*importing: float, queued: float | None = 60.0) -> tuple[Run, ...]:
    return tuple(
        Run(i, T0 + timedelta(days=i), queued, seconds) for i, seconds in enumerate(importing, start=1)
    )


def through(*steps: tuple[State, float], batch: int = 1) -> ImportRecord:
    """An import that went through each state at T0 + its minute."""
    current: ImportRecord | None = None
    for state, minute in steps:
        current = apply(current, Observation("acct", batch, state, T0 + timedelta(minutes=minute)), T0).record
    assert current is not None
    return current


# ------------------------------------------------------------------ what a run is
def test_a_successful_import_is_a_run_with_its_queued_and_importing_times() -> None:
    record = through((State.CREATED, 0), (State.IMPORTING, 2), (State.IMPORTED, 12))
    assert run_of(record) == Run(1, T0 + timedelta(minutes=12), 120.0, 600.0)


def test_a_success_whose_importing_event_was_lost_has_no_importing_time() -> None:
    record = through((State.CREATED, 0), (State.IMPORTED_WITH_MESSAGES, 12))
    assert run_of(record) == Run(1, T0 + timedelta(minutes=12), None, None)


@pytest.mark.parametrize("outcome", [State.FAILED, State.FAILED_WITH_MESSAGES, State.ABORTED])
def test_a_failure_or_abort_is_no_run(outcome: State) -> None:
    """An import aborted after hours stuck must not teach the account that hours are normal."""
    assert run_of(through((State.IMPORTING, 0), (outcome, 300))) is None


def test_an_unfinished_import_is_no_run() -> None:
    assert run_of(through((State.IMPORTING, 0))) is None


# ------------------------------------------------------------------ the bounded history
def test_remember_keeps_the_newest_runs_first_up_to_the_size() -> None:
    history = remember(runs(*range(HISTORY_SIZE + 3)))
    assert len(history) == HISTORY_SIZE
    assert [r.sis_batch_id for r in history] == list(range(HISTORY_SIZE + 3, 3, -1))


def test_remember_merges_what_two_records_of_one_import_say() -> None:
    first = Run(7, T0, 60.0, None)
    later = Run(7, T0, None, 300.0)  # its importing time became known after the finish
    assert remember([first, later]) == remember([later, first]) == (Run(7, T0, 60.0, 300.0),)
    assert remember([first, first]) == (first,)


def test_remember_is_order_independent() -> None:
    a, b, c = runs(10, 20, 30)
    assert remember([a, b, c]) == remember([c, a, b]) == (c, b, a)


# ------------------------------------------------------------------ learning one threshold
def test_the_slow_end_sets_the_largest_tenth_aside_and_is_a_value_that_was_observed() -> None:
    assert slow_end([5.0, 1.0, 3.0]) == 3
    assert slow_end([float(i) for i in range(1, 31)]) == 27
    assert slow_end([7.0]) == 7


def test_one_slow_run_does_not_raise_the_threshold_for_the_next_thirty() -> None:
    """29 one-hour imports and one of 5 hours: a 9-hour hang must be stuck (p99 x 2 said 10 h)."""
    assert learned([3600.0] * 29 + [5 * 3600.0], 7200, LEARNING) == 2 * 3600


def test_a_slowness_that_recurs_more_than_a_tenth_of_the_time_counts() -> None:
    """A weekly full sync of 3 hours among nightly one-hour deltas: the full sync is normal."""
    assert learned([3600.0] * 26 + [3 * 3600.0] * 4, 7200, LEARNING) == 6 * 3600


def test_one_run_short_of_enough_history_a_fast_account_keeps_the_fixed_threshold() -> None:
    assert learned([300.0] * 4, 7200, LEARNING) == 7200


def test_before_enough_history_a_slow_account_gets_a_wide_margin_over_its_slowest() -> None:
    """Its first nights of 3-hour imports do not page at the fixed 2 h: 3 x 3 h."""
    assert learned([3 * 3600.0, 2.5 * 3600], 7200, LEARNING) == 9 * 3600
    assert learned([5 * 3600.0], 7200, LEARNING) == LEARNING.ceiling
    assert learned([], 7200, LEARNING) == 7200


def test_with_just_enough_history_the_threshold_is_learned() -> None:
    assert learned([3000.0] * 5, 7200, LEARNING) == 6000  # p99 x 2


def test_learning_after_zero_never_learns() -> None:
    assert learned([3000.0] * 50, 7200, Learning(after=0)) == 7200


def test_a_fast_account_just_above_the_floor_keeps_its_learned_threshold() -> None:
    assert learned([451.0] * 5, 7200, LEARNING) == 902


def test_a_fast_account_just_below_the_floor_gets_the_floor() -> None:
    assert learned([449.0] * 5, 7200, LEARNING) == 900


def test_a_slow_account_just_below_the_ceiling_keeps_its_learned_threshold() -> None:
    assert learned([21599.0] * 5, 7200, LEARNING) == 43198


def test_a_slow_account_just_above_the_ceiling_gets_the_ceiling() -> None:
    assert learned([21601.0] * 5, 7200, LEARNING) == 43200


# ------------------------------------------------------------------ an account's thresholds
def test_five_minute_imports_page_within_the_hour_three_hour_imports_not_at_two_hours() -> None:
    fast = thresholds_for(AccountHistory(T0, runs(*[300.0] * 10)), FIXED, LEARNING)
    slow = thresholds_for(AccountHistory(T0, runs(*[3 * 3600.0] * 10)), FIXED, LEARNING)
    assert fast.running_too_long == 900
    assert slow.running_too_long == 6 * 3600
    assert (fast.orphaned, fast.silent) == (FIXED.orphaned, FIXED.silent)


def test_never_started_is_learned_from_how_long_imports_waited_to_start() -> None:
    history = AccountHistory(T0, runs(*[300.0] * 10, queued=1200.0))
    assert thresholds_for(history, FIXED, LEARNING).never_started == 2400


def test_a_run_queued_behind_another_teaches_only_its_wait_once_the_other_finished() -> None:
    """Two imports created at 02:00; the second waits 3 h behind the first and starts 30 s after it
    finishes: it waited 30 s for Canvas, not 3 h."""
    first = Run(1, T0 + timedelta(hours=3), 60.0, 3 * 3600.0 - 60)
    second = Run(2, T0 + timedelta(hours=3, minutes=10, seconds=30), 3 * 3600.0 + 30, 600.0)
    assert free_waits([first, second]) == [60.0, 30.0]


def test_runs_without_a_stage_time_do_not_count_towards_it() -> None:
    history = AccountHistory(T0, runs(*[300.0] * 10, queued=None))
    assert thresholds_for(history, FIXED, LEARNING).never_started == FIXED.never_started


def test_stuck_imports_judges_each_account_by_its_own_thresholds() -> None:
    fast = through((State.IMPORTING, 0), batch=1)
    other = apply(None, Observation("other", 2, State.IMPORTING, T0), T0).record
    by_account = {"acct": thresholds_for(AccountHistory(T0, runs(*[300.0] * 10)), FIXED, LEARNING)}
    at = T0 + timedelta(seconds=901)
    stuck = stuck_imports([fast, other], now=at, limits=FIXED, by_account=by_account)
    assert stuck == {("acct", 1): StuckReason.RUNNING_TOO_LONG}
