"""A finished import that no Live Event spoke of: the pipeline signal the reconciler cannot hide."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumer.core.stuck import finished_unseen
from consumer.core.tracker import ImportRecord, Observation, State, apply, mark_submitted

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
SILENT = 300.0


def submitted_then_finished_by_the_api(after: float) -> ImportRecord:
    """Submitted at T0 (the POST's answer says `created`), its finish recorded `after` seconds later."""
    created = apply(None, Observation("acct", 1, State.CREATED, T0, source="api"), T0).record
    ours = mark_submitted(created, T0, T0).record
    finish = Observation("acct", 1, State.IMPORTED, T0 + timedelta(seconds=60), source="api")
    return apply(ours, finish, T0 + timedelta(seconds=after)).record


def test_finished_by_the_api_just_after_the_silent_wait_is_unseen() -> None:
    assert finished_unseen(submitted_then_finished_by_the_api(SILENT + 1), silent_after=SILENT)


def test_finished_by_the_api_just_before_the_silent_wait_proves_nothing() -> None:
    """`submit --wait` asks the API within seconds: the events may still be on their way."""
    assert not finished_unseen(submitted_then_finished_by_the_api(SILENT - 1), silent_after=SILENT)


def test_an_import_with_any_live_event_is_not_unseen() -> None:
    record = submitted_then_finished_by_the_api(3600)
    late_event = Observation("acct", 1, State.CREATED, T0, source="event")
    assert not finished_unseen(apply(record, late_event, T0 + timedelta(hours=2)).record, silent_after=SILENT)


def test_an_unfinished_import_is_not_unseen() -> None:
    importing = apply(None, Observation("acct", 1, State.IMPORTING, T0, source="api"), T0).record
    later = apply(
        importing, Observation("acct", 1, State.CLEANUP_BATCH, T0, source="api"), T0 + timedelta(hours=1)
    )
    assert not finished_unseen(later.record, silent_after=SILENT)
