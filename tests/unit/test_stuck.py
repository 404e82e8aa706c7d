"""Every stuck rule, just below and just above its threshold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from consumer.core.stuck import StuckReason, StuckThresholds, stuck_imports, stuck_reason
from consumer.core.tracker import ImportRecord, Observation, State, apply, mark_submitted

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
LIMITS = StuckThresholds(never_started=1800, running_too_long=7200, orphaned=900, silent=300)
EPS = timedelta(seconds=1)


def record(*states: State, batch: int = 1, account: str = "acct", source: str = "event") -> ImportRecord:
    """An import that went through `states`, one minute apart, from T0."""
    current: ImportRecord | None = None
    for i, state in enumerate(states):
        obs = Observation(account, batch, state, T0 + timedelta(minutes=i), source=source)  # type: ignore[arg-type]
        current = apply(current, obs, T0).record
    assert current is not None
    return current


def reason(r: ImportRecord, at: datetime, busy: bool = False) -> StuckReason | None:
    return stuck_reason(r, now=at, account_busy=busy, limits=LIMITS)


def test_orphaned_initializing_just_below_threshold_is_not_stuck() -> None:
    assert reason(record(State.INITIALIZING), T0 + timedelta(seconds=900) - EPS) is None


def test_orphaned_initializing_just_above_threshold_is_orphaned() -> None:
    assert reason(record(State.INITIALIZING), T0 + timedelta(seconds=900) + EPS) is StuckReason.ORPHANED


def test_created_behind_nothing_just_below_threshold_is_not_stuck() -> None:
    r = record(State.INITIALIZING, State.CREATED)
    assert reason(r, T0 + timedelta(seconds=1800) - EPS) is None


def test_created_behind_nothing_just_above_threshold_never_started() -> None:
    r = record(State.INITIALIZING, State.CREATED)
    assert reason(r, T0 + timedelta(seconds=1800) + EPS) is StuckReason.NEVER_STARTED


def test_created_behind_a_running_import_is_not_stuck_however_long() -> None:
    r = record(State.INITIALIZING, State.CREATED)
    assert reason(r, T0 + timedelta(days=1), busy=True) is None


@pytest.mark.parametrize("state", [State.IMPORTING, State.CLEANUP_BATCH])
def test_running_just_below_threshold_is_not_stuck(state: State) -> None:
    r = record(State.IMPORTING, state) if state is State.CLEANUP_BATCH else record(State.IMPORTING)
    assert reason(r, T0 + timedelta(seconds=7200) - EPS) is None


@pytest.mark.parametrize("state", [State.IMPORTING, State.CLEANUP_BATCH])
def test_running_just_above_threshold_is_running_too_long(state: State) -> None:
    r = record(State.IMPORTING, state) if state is State.CLEANUP_BATCH else record(State.IMPORTING)
    assert reason(r, T0 + timedelta(seconds=7200) + EPS) is StuckReason.RUNNING_TOO_LONG


def test_running_is_timed_from_importing_not_from_cleanup() -> None:
    r = record(State.IMPORTING, State.CLEANUP_BATCH)  # cleanup one minute after importing began
    assert reason(r, T0 + timedelta(seconds=7200) + EPS) is StuckReason.RUNNING_TOO_LONG


def submitted_without_events() -> ImportRecord:
    r = record(State.CREATED, source="api")  # what the POST answered
    return mark_submitted(r, T0, T0).record


def test_submitted_without_events_just_below_threshold_is_not_stuck() -> None:
    assert reason(submitted_without_events(), T0 + timedelta(seconds=300) - EPS) is None


def test_submitted_without_events_just_above_threshold_is_silent() -> None:
    assert reason(submitted_without_events(), T0 + timedelta(seconds=300) + EPS) is StuckReason.SILENT


def test_submitted_import_with_an_event_is_not_silent() -> None:
    r = mark_submitted(record(State.INITIALIZING, State.CREATED), T0, T0).record
    assert reason(r, T0 + timedelta(seconds=301), busy=True) is None


@pytest.mark.parametrize(
    "last", [State.IMPORTED, State.FAILED, State.ABORTED, State.RESTORED, State.RESTORING]
)
def test_finished_or_restoring_imports_are_never_stuck(last: State) -> None:
    states = [State.IMPORTING, State.IMPORTED, last] if last in {State.RESTORED, State.RESTORING} else [last]
    assert reason(record(*states), T0 + timedelta(days=30)) is None


def test_stuck_imports_judges_waiting_against_running_imports_of_the_same_account() -> None:
    running = record(State.IMPORTING, batch=1)
    queued = record(State.INITIALIZING, State.CREATED, batch=2)
    alone = record(State.INITIALIZING, State.CREATED, batch=3, account="other")
    verdicts = stuck_imports([running, queued, alone], now=T0 + timedelta(seconds=1801), limits=LIMITS)
    assert verdicts == {("other", 3): StuckReason.NEVER_STARTED}


def test_an_import_running_too_long_does_not_make_its_account_busy() -> None:
    """It is probably dead (an abort Canvas never told of, a job that died): what waits behind it
    waits behind nothing, and must page as never started."""
    dead = record(State.IMPORTING, batch=1)
    queued = record(State.INITIALIZING, State.CREATED, batch=2)
    now = T0 + timedelta(seconds=7200) + EPS

    verdicts = stuck_imports([dead, queued], now=now, limits=LIMITS)

    assert verdicts == {("acct", 1): StuckReason.RUNNING_TOO_LONG, ("acct", 2): StuckReason.NEVER_STARTED}


def test_a_silent_import_that_runs_still_makes_its_account_busy() -> None:
    """Silent is about the Live Events pipeline, not the import: it runs, and others wait for it."""
    running = mark_submitted(record(State.IMPORTING, source="api", batch=1), T0, T0).record
    queued = record(State.INITIALIZING, State.CREATED, batch=2)

    verdicts = stuck_imports([running, queued], now=T0 + timedelta(seconds=1801), limits=LIMITS)

    assert verdicts == {("acct", 1): StuckReason.SILENT}


def test_a_wait_behind_the_accounts_own_import_counts_from_when_the_account_was_free() -> None:
    """Created 3 h ago, but the account was busy until a minute ago: it has waited for Canvas a
    minute, not 3 h; 30 minutes after the account was free, it is stuck."""
    queued = record(State.INITIALIZING, State.CREATED)
    free = T0 + timedelta(hours=3)

    def at(moment: datetime) -> dict[tuple[str, int], StuckReason]:
        return stuck_imports([queued], now=moment, limits=LIMITS, free_since={"acct": free})

    assert at(free + timedelta(minutes=1)) == {}
    assert at(free + timedelta(seconds=1800) + EPS) == {("acct", 1): StuckReason.NEVER_STARTED}
