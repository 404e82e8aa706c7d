"""`consumer.core.tracker`: folding observations of one import into its ImportRecord."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumer.core.tracker import (
    FINISHED,
    SUCCEEDED,
    Applied,
    DurationMeasured,
    Effect,
    Finished,
    ImportRecord,
    Observation,
    Origin,
    Stage,
    StageMeasured,
    State,
    Succeeded,
    Verdict,
    apply,
    mark_submitted,
    rank,
)

ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
BATCH = 31048324
T0 = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def obs(
    state: State,
    seconds: float,
    *,
    account_id: str | None = None,
    request_id: str | None = None,
    user_agent: str | None = None,
) -> Observation:
    return Observation(
        account=ACCOUNT,
        sis_batch_id=BATCH,
        state=state,
        at=T0 + timedelta(seconds=seconds),
        account_id=account_id,
        request_id=request_id,
        user_agent=user_agent,
    )


def fold(
    observations: Iterable[Observation],
    record: ImportRecord | None = None,
    now: datetime = NOW,
) -> tuple[ImportRecord | None, list[Applied]]:
    steps: list[Applied] = []
    for o in observations:
        step = apply(record, o, now)
        steps.append(step)
        record = step.record
    return record, steps


def folded(observations: Iterable[Observation]) -> ImportRecord:
    record, _ = fold(observations)
    assert record is not None
    return record


def effects_of(steps: Iterable[Applied]) -> list[Effect]:
    return [effect for step in steps for effect in step.effects]


# A full successful import: initializing, created (same request), queued 9 min, 1 h import.
HAPPY = [
    obs(State.INITIALIZING, 0),
    obs(State.CREATED, 1),
    obs(State.IMPORTING, 541),
    obs(State.CLEANUP_BATCH, 3000),
    obs(State.IMPORTED, 4141),
]


# --- a new import ---------------------------------------------------------------------------


def test_first_observation_creates_a_record_of_that_state() -> None:
    o = obs(State.CREATED, 0, account_id="1", request_id="req-1", user_agent="ua")

    result = apply(None, o, NOW)

    assert result.verdict is Verdict.APPLIED
    assert result.record == ImportRecord(
        account=ACCOUNT,
        sis_batch_id=BATCH,
        state=State.CREATED,
        stage_times={State.CREATED: o.at},
        first_seen_at=NOW,
        last_news_at=NOW,
        account_id="1",
        outcome=None,
        origin=Origin.EXTERNAL,
        request_id="req-1",
        user_agent="ua",
        last_event_at=o.at,
    )


def test_first_observation_of_an_unfinished_state_has_no_effects() -> None:
    assert apply(None, obs(State.INITIALIZING, 0), NOW).effects == ()


def test_first_observation_of_a_finished_state_reports_the_finish() -> None:
    result = apply(None, obs(State.FAILED, 0), NOW)

    assert result.record.outcome is State.FAILED
    assert result.effects == (Finished(State.FAILED),)


def test_each_stage_time_is_recorded() -> None:
    record = folded(HAPPY)

    assert dict(record.stage_times) == {o.state: o.at for o in HAPPY}


def test_forward_observation_moves_the_state_and_is_applied() -> None:
    record = folded(HAPPY[:2])

    result = apply(record, HAPPY[2], NOW)

    assert result.verdict is Verdict.APPLIED
    assert result.record.state is State.IMPORTING


def test_forward_observation_sets_last_news_at_to_now() -> None:
    record = folded(HAPPY[:2])
    later = NOW + timedelta(minutes=5)

    assert apply(record, HAPPY[2], later).record.last_news_at == later


def test_forward_observation_keeps_first_seen_at() -> None:
    record = folded(HAPPY[:2])

    assert apply(record, HAPPY[2], NOW + timedelta(minutes=5)).record.first_seen_at == NOW


def test_finished_record_has_outcome_finished_at_and_duration() -> None:
    record = folded(HAPPY)

    assert (record.outcome, record.finished_at, record.duration_seconds) == (
        State.IMPORTED,
        T0 + timedelta(seconds=4141),
        4141.0,
    )


# --- duplicates -----------------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(HAPPY)))
def test_duplicate_is_duplicate_with_no_effects_and_the_identical_record(index: int) -> None:
    record = folded(HAPPY)

    result = apply(record, HAPPY[index], NOW + timedelta(hours=1))

    assert result.verdict is Verdict.DUPLICATE
    assert result.effects == ()
    assert result.record is record
    assert not result.changed


def test_repeat_of_a_state_with_a_later_time_is_a_duplicate_that_changes_nothing() -> None:
    record = folded(HAPPY)

    result = apply(record, obs(State.IMPORTING, 600), NOW)

    assert result.verdict is Verdict.DUPLICATE
    assert result.record is record


def test_repeat_of_a_state_with_an_earlier_time_keeps_the_earlier_time() -> None:
    record = folded(HAPPY)

    result = apply(record, obs(State.IMPORTING, 500), NOW)

    assert result.verdict is Verdict.DUPLICATE
    assert result.record.stage_times[State.IMPORTING] == T0 + timedelta(seconds=500)


def test_repeat_of_a_state_with_an_earlier_time_reports_the_record_changed() -> None:
    # The store writes the record only when `changed`: else the earlier time would be lost.
    record = folded(HAPPY)

    result = apply(record, obs(State.IMPORTING, 500), NOW)

    assert result.changed
    assert result.effects == ()


# --- monotonic ------------------------------------------------------------------------------


def test_late_importing_after_imported_is_stale() -> None:
    record = folded([HAPPY[0], HAPPY[1], HAPPY[4]])

    assert apply(record, HAPPY[2], NOW).verdict is Verdict.STALE


def test_late_importing_after_imported_leaves_the_state_imported() -> None:
    record = folded([HAPPY[0], HAPPY[1], HAPPY[4]])

    assert apply(record, HAPPY[2], NOW).record.state is State.IMPORTED


def test_late_importing_after_imported_keeps_the_importing_time() -> None:
    record = folded([HAPPY[0], HAPPY[1], HAPPY[4]])

    new = apply(record, HAPPY[2], NOW).record

    assert new.stage_times[State.IMPORTING] == HAPPY[2].at


def test_late_created_after_importing_is_stale() -> None:
    record = folded([HAPPY[0], HAPPY[2]])

    result = apply(record, HAPPY[1], NOW)

    assert (result.verdict, result.record.state) == (Verdict.STALE, State.IMPORTING)


# --- restore after finish -------------------------------------------------------------------


@pytest.mark.parametrize("finished", sorted(FINISHED))
def test_restoring_after_a_finished_state_moves_to_restoring_and_keeps_outcome(
    finished: State,
) -> None:
    record = folded([*HAPPY[:3], obs(finished, 4000)])

    result = apply(record, obs(State.RESTORING, 90000), NOW)

    assert result.verdict is Verdict.APPLIED
    assert (result.record.state, result.record.outcome) == (State.RESTORING, finished)


@pytest.mark.parametrize("end", [State.RESTORED, State.PARTIALLY_RESTORED])
def test_restore_end_after_restoring_moves_state_and_keeps_outcome(end: State) -> None:
    record = folded([*HAPPY, obs(State.RESTORING, 90000)])

    result = apply(record, obs(end, 90060), NOW)

    assert result.verdict is Verdict.APPLIED
    assert (result.record.state, result.record.outcome) == (end, State.IMPORTED)


def test_restore_keeps_finished_at_and_duration_of_the_import() -> None:
    before = folded(HAPPY)

    after = folded([*HAPPY, obs(State.RESTORING, 90000), obs(State.RESTORED, 90060)])

    assert (after.finished_at, after.duration_seconds) == (
        before.finished_at,
        before.duration_seconds,
    )


def test_restore_has_no_effects() -> None:
    record = folded(HAPPY)

    _, steps = fold([obs(State.RESTORING, 90000), obs(State.RESTORED, 90060)], record)

    assert effects_of(steps) == []


def test_finished_state_arriving_after_restoring_is_stale_but_reports_the_finish() -> None:
    record = folded([*HAPPY[:3], obs(State.RESTORING, 90000)])

    result = apply(record, HAPPY[4], NOW)

    assert result.verdict is Verdict.STALE
    assert result.record.state is State.RESTORING
    assert Finished(State.IMPORTED) in result.effects


# --- effects --------------------------------------------------------------------------------


def test_finished_effect_is_emitted_exactly_once_over_a_lifecycle() -> None:
    _, steps = fold([*HAPPY, *HAPPY, obs(State.RESTORING, 90000), obs(State.RESTORED, 90060)])

    assert [e for e in effects_of(steps) if isinstance(e, Finished)] == [Finished(State.IMPORTED)]


def test_finished_effect_comes_with_the_observation_that_finishes() -> None:
    _, steps = fold(HAPPY)

    assert [Finished(State.IMPORTED) in step.effects for step in steps] == [
        False,
        False,
        False,
        False,
        True,
    ]


@pytest.mark.parametrize("finished", sorted(SUCCEEDED))
def test_success_emits_succeeded_at_the_finish_time(finished: State) -> None:
    _, steps = fold([*HAPPY[:3], obs(finished, 4000)])

    assert [e for e in effects_of(steps) if isinstance(e, Succeeded)] == [
        Succeeded(T0 + timedelta(seconds=4000))
    ]


@pytest.mark.parametrize("finished", sorted(FINISHED - SUCCEEDED))
def test_failure_emits_no_succeeded(finished: State) -> None:
    _, steps = fold([*HAPPY[:3], obs(finished, 4000)])

    assert not any(isinstance(e, Succeeded) for e in effects_of(steps))


@pytest.mark.parametrize("finished", sorted(FINISHED))
def test_finished_effect_carries_the_finished_state(finished: State) -> None:
    _, steps = fold([*HAPPY[:3], obs(finished, 4000)])

    assert [e for e in effects_of(steps) if isinstance(e, Finished)] == [Finished(finished)]


def test_duration_is_measured_once_from_initializing_to_finish() -> None:
    _, steps = fold([*HAPPY, *HAPPY])

    assert [e for e in effects_of(steps) if isinstance(e, DurationMeasured)] == [DurationMeasured(4141.0)]


def test_duration_is_measured_from_created_when_initializing_was_lost() -> None:
    _, steps = fold(HAPPY[1:])

    assert [e for e in effects_of(steps) if isinstance(e, DurationMeasured)] == [DurationMeasured(4140.0)]


def test_duration_is_not_measured_without_a_start() -> None:
    _, steps = fold(HAPPY[2:])

    assert not any(isinstance(e, DurationMeasured) for e in effects_of(steps))


def test_queued_and_importing_stages_are_measured_once_each() -> None:
    _, steps = fold([*HAPPY, *HAPPY])

    assert [e for e in effects_of(steps) if isinstance(e, StageMeasured)] == [
        StageMeasured(Stage.QUEUED, 540.0),
        StageMeasured(Stage.IMPORTING, 3600.0),
    ]


def test_importing_stage_is_measured_when_a_late_importing_arrives_after_the_finish() -> None:
    record = folded([HAPPY[0], HAPPY[1], HAPPY[4]])

    result = apply(record, HAPPY[2], NOW)

    assert StageMeasured(Stage.IMPORTING, 3600.0) in result.effects


def test_aborted_while_queued_measures_no_importing_stage() -> None:
    _, steps = fold([HAPPY[0], HAPPY[1], obs(State.ABORTED, 1800)])

    assert not any(isinstance(e, StageMeasured) for e in effects_of(steps))


def test_accepted_stage_is_measured_by_mark_submitted_from_submit_to_initializing() -> None:
    record = folded(HAPPY[:1])

    result = mark_submitted(record, T0 - timedelta(seconds=2.5), NOW)

    assert result.effects == (StageMeasured(Stage.ACCEPTED, 2.5),)


def test_accepted_stage_is_measured_when_initializing_arrives_after_mark_submitted() -> None:
    record = folded(HAPPY[1:2])
    submitted = mark_submitted(record, T0 - timedelta(seconds=2.5), NOW).record

    result = apply(submitted, HAPPY[0], NOW)

    assert result.effects == (StageMeasured(Stage.ACCEPTED, 2.5),)


def test_mark_submitted_sets_origin_and_submitted_at() -> None:
    record = folded(HAPPY[:1])

    new = mark_submitted(record, T0 - timedelta(seconds=2), NOW).record

    assert (new.origin, new.submitted_at) == (Origin.SUBMITTED, T0 - timedelta(seconds=2))


def test_mark_submitted_twice_is_a_duplicate_without_effects() -> None:
    record = mark_submitted(folded(HAPPY[:1]), T0 - timedelta(seconds=2), NOW).record

    result = mark_submitted(record, T0 - timedelta(seconds=2), NOW)

    assert (result.verdict, result.effects, result.record) == (Verdict.DUPLICATE, (), record)


def test_duration_starts_at_submit_when_submit_is_earliest() -> None:
    record = mark_submitted(folded(HAPPY[:1]), T0 - timedelta(seconds=9), NOW).record

    _, steps = fold(HAPPY[1:], record)

    assert DurationMeasured(4150.0) in effects_of(steps)


def test_negative_accepted_latency_clamps_to_zero() -> None:
    # Our clock ran ahead of Canvas's: the submit looks later than the `initializing` event.
    record = folded(HAPPY[:1])

    result = mark_submitted(record, T0 + timedelta(seconds=3), NOW)

    assert result.effects == (StageMeasured(Stage.ACCEPTED, 0.0),)


def test_negative_queued_latency_clamps_to_zero() -> None:
    _, steps = fold([obs(State.CREATED, 10), obs(State.IMPORTING, 4)])

    assert effects_of(steps) == [StageMeasured(Stage.QUEUED, 0.0)]


def test_negative_duration_clamps_to_zero() -> None:
    # Only the finish is known, and our submit looks later than it.
    result = mark_submitted(folded([obs(State.IMPORTED, 0)]), T0 + timedelta(seconds=5), NOW)

    assert DurationMeasured(0.0) in result.effects


# --- another import -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "other",
    [
        Observation(account=ACCOUNT, sis_batch_id=BATCH + 1, state=State.IMPORTING, at=T0),
        Observation(account="another-root", sis_batch_id=BATCH, state=State.IMPORTING, at=T0),
    ],
    ids=["other-batch", "other-account"],
)
def test_apply_raises_for_an_observation_of_another_import(other: Observation) -> None:
    record = folded(HAPPY[:2])

    with pytest.raises(ValueError, match="another import"):
        apply(record, other, NOW)


# --- properties -----------------------------------------------------------------------------


@st.composite
def lifecycles(draw: st.DrawFn) -> list[Observation]:
    """One import's observations in the order Canvas went through them (docs/canvas.md, "States")."""
    path = [State.INITIALIZING]
    if draw(st.booleans()):  # else orphaned in `initializing`
        path.append(State.CREATED)
        after_created = draw(st.sampled_from(["wait", "abort", "run"]))
        if after_created == "abort":
            path.append(State.ABORTED)
        elif after_created == "run":
            path.append(State.IMPORTING)
            if draw(st.booleans()):
                path.append(State.CLEANUP_BATCH)
            end = draw(st.sampled_from([None, *sorted(FINISHED)]))
            if end is not None:
                path.append(end)
    if path[-1] in FINISHED and draw(st.booleans()):
        path.append(State.RESTORING)
        restore_end = draw(st.sampled_from([None, State.RESTORED, State.PARTIALLY_RESTORED]))
        if restore_end is not None:
            path.append(restore_end)

    gaps = draw(
        st.lists(
            st.integers(min_value=1, max_value=6 * 3600 * 1000),
            min_size=len(path),
            max_size=len(path),
        )
    )
    request = {
        "account_id": "1",
        "request_id": draw(st.sampled_from(["req-a", "req-b"])),
        "developer_key_id": "170000000000056",
        "user_agent": "sis-uploader/2.1",
    }
    observations = []
    at = T0
    for state, gap in zip(path, gaps, strict=True):
        at += timedelta(milliseconds=gap)
        if state in (State.INITIALIZING, State.CREATED):  # request-time metadata
            o = Observation(ACCOUNT, BATCH, state, at, "event", **request)
        elif state is State.ABORTED:  # silent: only the SIS Imports API reveals it
            o = Observation(ACCOUNT, BATCH, state, at, "api", account_id="1")
        else:  # job metadata
            o = Observation(ACCOUNT, BATCH, state, at, "event", account_id="1")
        observations.append(o)
    return observations


@st.composite
def lifecycle_and_delivery(draw: st.DrawFn) -> tuple[list[Observation], list[Observation]]:
    """A lifecycle, and its observations as SQS delivers them: reordered, some redelivered."""
    in_order = draw(lifecycles())
    redelivered = draw(st.lists(st.sampled_from(in_order), max_size=2 * len(in_order)))
    delivered = draw(st.permutations([*in_order, *redelivered]))
    return in_order, delivered


@st.composite
def lifecycle_and_api_repeats(
    draw: st.DrawFn,
) -> tuple[list[Observation], list[Observation]]:
    """A lifecycle whose states are also reported by the API with times a little off, reordered."""
    in_order = draw(lifecycles())
    repeated = draw(st.lists(st.sampled_from(in_order), max_size=2 * len(in_order)))
    offsets = draw(
        st.lists(
            st.integers(min_value=-5000, max_value=5000),
            min_size=len(repeated),
            max_size=len(repeated),
        )
    )
    api = [
        replace(o, at=o.at + timedelta(milliseconds=ms), source="api")
        for o, ms in zip(repeated, offsets, strict=True)
    ]
    return in_order, draw(st.permutations([*in_order, *api]))


def store_fold(observations: Iterable[Observation]) -> ImportRecord | None:
    """Fold as the store does: keep the new record only for a new import or when `changed`."""
    stored: ImportRecord | None = None
    for o in observations:
        result = apply(stored, o, NOW)
        if stored is None or result.changed:
            stored = result.record
    return stored


def effect_kind(effect: Effect) -> str:
    if isinstance(effect, StageMeasured):
        return f"StageMeasured:{effect.stage}"
    return type(effect).__name__


def kinds(effects: Iterable[Effect]) -> Counter[str]:
    return Counter(effect_kind(e) for e in effects)


def expected_kinds(in_order: Sequence[Observation]) -> Counter[str]:
    """What the lifecycle makes known, once each: tracker.effects_between's guarantee."""
    states = {o.state for o in in_order}
    finished = states & FINISHED
    expected: Counter[str] = Counter()
    if finished:
        expected["Finished"] = 1
        if finished & SUCCEEDED:
            expected["Succeeded"] = 1
        if states & {State.INITIALIZING, State.CREATED}:
            expected["DurationMeasured"] = 1
        if State.IMPORTING in states:
            expected["StageMeasured:importing"] = 1
    if {State.CREATED, State.IMPORTING} <= states:
        expected["StageMeasured:queued"] = 1
    return expected


PROPERTY_SETTINGS = settings(max_examples=200, deadline=None)


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_any_delivery_order_with_duplicates_ends_in_the_in_order_record(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    in_order, delivered = case

    assert folded(delivered) == folded(in_order)


@PROPERTY_SETTINGS
@given(lifecycles())
def test_in_order_fold_emits_each_effect_kind_the_lifecycle_allows_exactly_once(
    in_order: list[Observation],
) -> None:
    _, steps = fold(in_order)

    assert kinds(effects_of(steps)) == expected_kinds(in_order)


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_any_delivery_order_emits_the_same_effect_kinds_as_in_order(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    in_order, delivered = case
    _, in_order_steps = fold(in_order)
    _, delivered_steps = fold(delivered)

    assert kinds(effects_of(delivered_steps)) == kinds(effects_of(in_order_steps))


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_any_delivery_order_emits_the_same_effects_except_the_duration_value(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    # Finished, Succeeded and stage latencies depend only on facts fixed once known. The duration
    # is measured from the earliest start known when the finish arrives: `created` if the
    # `initializing` event comes after the finish (see the next test).
    in_order, delivered = case
    _, in_order_steps = fold(in_order)
    _, delivered_steps = fold(delivered)

    def without_duration(effects: Iterable[Effect]) -> Counter[Effect]:
        return Counter(e for e in effects if not isinstance(e, DurationMeasured))

    assert without_duration(effects_of(delivered_steps)) == without_duration(effects_of(in_order_steps))


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_any_delivery_order_measures_duration_from_a_known_start_to_the_finish(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    in_order, delivered = case
    times = {o.state: o.at for o in in_order}
    finished = [o.at for o in in_order if o.state in FINISHED]
    _, steps = fold(delivered)

    measured = [e.seconds for e in effects_of(steps) if isinstance(e, DurationMeasured)]

    allowed = {
        (finished[0] - times[start]).total_seconds()
        for start in (State.INITIALIZING, State.CREATED)
        if start in times and finished
    }
    assert set(measured) <= allowed
    assert len(measured) == (1 if allowed else 0)


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_any_delivery_order_never_moves_the_state_to_a_lower_rank(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    _, delivered = case
    _, steps = fold(delivered)

    ranks = [rank(step.record.state) for step in steps]

    assert ranks == sorted(ranks)


@PROPERTY_SETTINGS
@given(lifecycle_and_delivery())
def test_applying_the_whole_delivery_again_emits_no_effects_and_changes_nothing(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    _, delivered = case
    record = folded(delivered)

    _, again = fold(delivered, record, NOW + timedelta(hours=1))

    assert effects_of(again) == []
    assert all(step.verdict is Verdict.DUPLICATE and step.record is record for step in again)


@PROPERTY_SETTINGS
@given(lifecycle_and_api_repeats())
def test_any_order_of_repeats_with_other_times_ends_in_the_earliest_time_of_each_state(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    _, delivered = case

    record = folded(delivered)

    earliest: dict[State, datetime] = {}
    for o in delivered:
        earliest[o.state] = min(o.at, earliest.get(o.state, o.at))
    assert dict(record.stage_times) == earliest


@PROPERTY_SETTINGS
@given(lifecycle_and_api_repeats())
def test_keeping_only_changed_results_ends_in_the_same_record_as_the_fold(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    _, delivered = case

    assert store_fold(delivered) == folded(delivered)


@PROPERTY_SETTINGS
@given(lifecycle_and_api_repeats())
def test_any_order_of_repeats_with_other_times_emits_the_effect_kinds_of_the_lifecycle(
    case: tuple[list[Observation], list[Observation]],
) -> None:
    in_order, delivered = case
    _, steps = fold(delivered)

    assert kinds(effects_of(steps)) == expected_kinds(in_order)
