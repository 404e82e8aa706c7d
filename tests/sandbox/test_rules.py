"""The sandbox's pure rules, without a server: throttle, parameters, ids, plans, messages, uploads."""

from __future__ import annotations

import io
import random
import zipfile
from datetime import UTC, datetime

import pytest

from consumer.sandbox.accounts import default_accounts
from consumer.sandbox.knobs import Knobs, Plan, draw_plan
from consumer.sandbox.live_events import event_time
from consumer.sandbox.params import parse_create, raw_upload_name
from consumer.sandbox.render import stringify_ids
from consumer.sandbox.sis_errors import listed, planned_errors
from consumer.sandbox.throttle import LeakyBucket
from consumer.sandbox.uploads import summarize

ACCOUNT = default_accounts()[0]


def test_the_bucket_refuses_only_once_full_and_leaks_back() -> None:
    bucket = LeakyBucket(capacity=2, leak_per_second=1)

    assert bucket.charge(1.5, now=0).allowed
    assert bucket.charge(1.5, now=0).allowed  # over capacity now, but it was not full before
    assert not bucket.charge(1.5, now=0).allowed
    assert bucket.charge(1.5, now=2).allowed


def test_multi_term_batch_mode_false_still_needs_a_change_threshold() -> None:
    parsed = parse_create({"multi_term_batch_mode": "false"}, ACCOUNT.term)

    assert parsed.early_error is None
    assert parsed.late_error is not None
    assert parsed.late_error.status == 400


def test_an_invalid_drop_status_is_a_late_error() -> None:
    parsed = parse_create({"diffing_drop_status": "vanished"}, ACCOUNT.term)

    assert parsed.late_error is not None
    assert parsed.late_error.body == {"message": "Invalid diffing_drop_status"}


def test_stickiness_options_need_override() -> None:
    parsed = parse_create({"add_sis_stickiness": "1"}, ACCOUNT.term)

    assert parsed.options.add_sis_stickiness is None


def test_a_raw_post_without_extension_takes_it_from_the_content_type() -> None:
    assert raw_upload_name(None, "application/zip") == "sis_import.zip"
    assert raw_upload_name(None, "application/octet-stream") == "sis_import.zip"
    assert raw_upload_name("xml", "text/csv") == "sis_import.xml"
    assert not isinstance(raw_upload_name(None, "text/csv; charset=latin1"), str)


def test_stringify_ids_changes_ids_only() -> None:
    out = stringify_ids(
        {"id": 1, "user": {"id": 2, "name": "x"}, "progress": 5, "thing_ids": [3], "flag": True}
    )

    assert out == {
        "id": "1",
        "user": {"id": "2", "name": "x"},
        "progress": 5,
        "thing_ids": ["3"],
        "flag": True,
    }


def test_event_time_has_milliseconds_and_z() -> None:
    assert event_time(datetime(2020, 1, 14, 14, 14, 11, 498765, tzinfo=UTC)) == "2020-01-14T14:14:11.498Z"


def test_at_most_24_messages_are_listed_then_a_summary_row() -> None:
    errors = planned_errors(
        7, summarize("users.csv", b"user_id\n"), 30, failure=True, ids=iter(range(30)), at=datetime.now(UTC)
    )

    rows = listed(errors, failure=True)

    assert len(rows) == 25
    assert listed(errors, failure=False) == []
    assert rows[-1] == [
        "and 6 more errors that were not included",
        "Download the error file to see all errors.",
    ]


def test_plans_drawn_from_the_same_seed_are_the_same() -> None:
    knobs = Knobs(failed_rate=0.3, abort_rate=0.3, stuck_rate=0.2)

    rng, rng_again = random.Random(5), random.Random(5)

    first = [draw_plan(knobs, rng) for _ in range(20)]
    again = [draw_plan(knobs, rng_again) for _ in range(20)]

    assert first == again
    assert {p.outcome for p in first} >= {"failed", "aborted", "imported"}


def test_outcome_rates_over_1_are_refused() -> None:
    with pytest.raises(ValueError, match="more than 1"):
        Knobs(failed_rate=0.6, warning_rate=0.6)


def test_a_plan_cannot_lose_a_silent_state() -> None:
    with pytest.raises(ValueError, match="cleanup_batch"):
        Plan(lose=frozenset({"cleanup_batch"}))


def test_a_zip_upload_is_summarized_by_csv_headers() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.csv", "user_id,login_id,status\nu1,a,active\nu2,b,active\n")
        archive.writestr("b.csv", "course_id,short_name,long_name,status\nc1,c,C,active\n")

    summary = summarize("sis.zip", buffer.getvalue())

    assert summary.supplied_batches == ["user", "course"]
    assert summary.counts()["users"] == 2
    assert summary.counts()["courses"] == 1
