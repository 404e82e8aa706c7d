"""`tracker.creator` / `join_*`: which submission created an import, and what joining it changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from consumer.core.submission import SubmissionStatus
from consumer.core.tracker import Origin, Stage, StageMeasured, State, apply, creator, join_answer, join_event
from tests.support.records import ACCOUNT, NOW, REQUEST_ID, T0, obs, submission

ANSWERED = replace(submission(), id=7, status=SubmissionStatus.ACCEPTED, account=ACCOUNT, sis_batch_id=101)


def test_the_creator_is_found_by_account_and_batch_id() -> None:
    record = apply(None, obs(State.IMPORTING, 0, request_id=None), NOW).record

    assert creator([ANSWERED], record) == ANSWERED


def test_the_creator_is_found_by_request_id_when_the_answer_named_no_batch() -> None:
    rejected = replace(ANSWERED, status=SubmissionStatus.REJECTED, sis_batch_id=None, request_id=REQUEST_ID)
    record = apply(None, obs(State.INITIALIZING, 0, batch=555), NOW).record

    assert creator([rejected], record) == rejected


@pytest.mark.parametrize("status", [SubmissionStatus.PENDING, SubmissionStatus.FAILED])
def test_a_submission_canvas_did_not_answer_creates_nothing(status: SubmissionStatus) -> None:
    record = apply(None, obs(State.IMPORTING, 0), NOW).record

    assert creator([replace(ANSWERED, status=status, request_id=REQUEST_ID)], record) is None


def test_of_two_candidates_the_earliest_submission_is_the_creator() -> None:
    later = replace(ANSWERED, id=9)
    record = apply(None, obs(State.IMPORTING, 0), NOW).record

    assert creator([later, ANSWERED], record) == ANSWERED


def test_a_submission_of_another_import_is_not_the_creator() -> None:
    record = apply(None, obs(State.IMPORTING, 0, batch=102, request_id="other"), NOW).record

    assert creator([replace(ANSWERED, request_id=REQUEST_ID)], record) is None


def test_joining_an_event_makes_the_import_submitted_and_measures_acceptance_once() -> None:
    result = apply(None, obs(State.INITIALIZING, 0), NOW)

    joined = join_event(None, result, ANSWERED, NOW)

    assert joined.record.origin is Origin.SUBMITTED
    assert joined.record.submitted_at == ANSWERED.submitted_at
    assert StageMeasured(Stage.ACCEPTED, 60.0) in joined.effects
    again = join_event(joined.record, apply(joined.record, obs(State.CREATED, 1), NOW), ANSWERED, NOW)
    assert not any(isinstance(e, StageMeasured) and e.stage is Stage.ACCEPTED for e in again.effects)


def test_an_answer_after_the_finish_joins_without_moving_the_state_back() -> None:
    finished = apply(None, obs(State.IMPORTED, 9), NOW).record

    joined = join_answer(finished, obs(State.CREATED, 0, source="api"), T0 - timedelta(minutes=1), NOW)

    assert (joined.record.state, joined.record.origin) == (State.IMPORTED, Origin.SUBMITTED)


def test_an_answer_without_an_import_to_join_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="needs"):
        join_answer(None, None, T0, NOW)
