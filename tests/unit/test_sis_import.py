"""The SIS Imports API's answer as tracker input."""

from __future__ import annotations

from datetime import UTC, datetime

from consumer.core.sis_import import api_observation, result_summary
from consumer.core.tracker import Observation, State, apply

NOW = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
EVENT_TIME = datetime(2026, 11, 24, 2, 0, 5, 498_000, tzinfo=UTC)


def answer(state: str, **times: str) -> dict[str, object]:
    return {"id": "31048321", "workflow_state": state, **times}


def test_a_whole_second_api_time_is_taken_at_the_end_of_its_second() -> None:
    obs = api_observation(
        answer("created", created_at="2026-11-24T02:00:05Z"), account="a", account_id="1", now=NOW
    )
    assert obs is not None
    assert obs.at == datetime(2026, 11, 24, 2, 0, 5, 999_999, tzinfo=UTC)


def test_an_api_time_with_a_fraction_is_kept_as_it_is() -> None:
    obs = api_observation(
        answer("created", created_at="2026-11-24T02:00:05.250Z"), account="a", account_id="1", now=NOW
    )
    assert obs is not None
    assert obs.at == datetime(2026, 11, 24, 2, 0, 5, 250_000, tzinfo=UTC)


def test_the_event_time_of_a_state_wins_over_the_api_in_either_order() -> None:
    event = Observation("a", 31048321, State.CREATED, EVENT_TIME, source="event")
    api = api_observation(
        answer("created", created_at="2026-11-24T02:00:05Z"), account="a", account_id="1", now=NOW
    )
    assert api is not None
    event_first = apply(apply(None, event, NOW).record, api, NOW).record
    api_first = apply(apply(None, api, NOW).record, event, NOW).record
    assert event_first.stage_times[State.CREATED] == EVENT_TIME
    assert api_first.stage_times[State.CREATED] == EVENT_TIME


def test_the_time_of_the_reported_state_comes_from_its_own_timestamp() -> None:
    times = {
        "created_at": "2026-11-24T02:00:00Z",
        "started_at": "2026-11-24T02:01:00Z",
        "ended_at": "2026-11-24T02:09:00Z",
    }
    at = {
        state: api_observation(answer(state, **times), account="a", account_id="1", now=NOW)
        for state in ("created", "importing", "imported")
    }
    assert {s: o.at.minute for s, o in at.items() if o is not None} == {
        "created": 0,
        "importing": 1,
        "imported": 9,
    }


def test_an_answer_without_a_known_state_is_no_observation() -> None:
    assert api_observation(answer("half_done"), account="a", account_id="1", now=NOW) is None


def test_the_result_summary_counts_and_keeps_the_first_messages() -> None:
    sis_import = {
        "id": 7,
        "workflow_state": "imported_with_messages",
        "data": {"counts": {"warning_count": 30, "error_count": 0, "batch_courses_deleted": 2}},
        "processing_warnings": [["users.csv", f"warning {i}"] for i in range(25)],
    }
    summary = result_summary(sis_import, first=3)
    assert summary["warning_count"] == 30
    assert summary["first_warnings"] == [
        ["users.csv", "warning 0"],
        ["users.csv", "warning 1"],
        ["users.csv", "warning 2"],
    ]
    assert summary["deleted"] == {"batch_courses_deleted": 2}
    assert summary["errors_attachment"] is False
