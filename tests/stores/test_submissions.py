"""The submissions role of every store: what `submit` writes down, and how imports join it."""

from __future__ import annotations

from datetime import timedelta

from consumer.core.submission import SubmissionStatus
from consumer.core.tracker import Origin, State
from consumer.ports import Store
from tests.support.records import ACCOUNT, NOW, REQUEST_ID, T0, obs, submission


async def test_a_recorded_submission_reads_back_pending(store: Store) -> None:
    written = submission()

    submission_id = await store.record_submission(written)

    read = await store.submission(submission_id)
    assert read is not None
    assert read.status is SubmissionStatus.PENDING
    assert (read.file_name, read.sha256, dict(read.options)) == (
        written.file_name,
        written.sha256,
        dict(written.options),
    )
    assert read.submitted_at == written.submitted_at


async def test_submission_ids_are_distinct(store: Store) -> None:
    ids = {await store.record_submission(submission(minutes=-i)) for i in range(3)}

    assert len(ids) == 3


async def test_an_accepted_answer_creates_the_import_as_submitted(store: Store) -> None:
    submission_id = await store.record_submission(submission(minutes=-1))

    joined = await store.answer_submission(
        submission_id,
        status=SubmissionStatus.ACCEPTED,
        now=NOW,
        http_status=200,
        request_id=REQUEST_ID,
        observation=obs(State.CREATED, 0, source="api", request_id=None),
    )

    assert joined is not None
    record = await store.record(ACCOUNT, 101)
    assert record == joined.record
    assert (record.origin, record.submitted_at) == (Origin.SUBMITTED, T0 - timedelta(minutes=1))
    answered = await store.submission(submission_id)
    assert answered is not None
    assert (answered.status, answered.sis_batch_id, answered.request_id) == (
        SubmissionStatus.ACCEPTED,
        101,
        REQUEST_ID,
    )
    assert await store.submissions() == {(ACCOUNT, 101): answered}


async def test_events_after_the_answer_keep_the_import_submitted(store: Store) -> None:
    submission_id = await store.record_submission(submission())
    await store.answer_submission(
        submission_id,
        status=SubmissionStatus.ACCEPTED,
        now=NOW,
        observation=obs(State.CREATED, 0, source="api"),
    )

    finished = await store.apply(obs(State.IMPORTED, 9, request_id=None), NOW)

    assert finished.record.origin is Origin.SUBMITTED


async def test_an_answer_recorded_after_the_events_joins_the_import_without_moving_it_back(
    store: Store,
) -> None:
    submission_id = await store.record_submission(submission())
    await store.apply(obs(State.CREATED, 0), NOW)
    await store.apply(obs(State.IMPORTED, 9, request_id=None), NOW)

    await store.answer_submission(
        submission_id,
        status=SubmissionStatus.ACCEPTED,
        now=NOW,
        observation=obs(State.CREATED, 0, source="api", request_id=None),
    )

    record = await store.record(ACCOUNT, 101)
    assert record is not None
    assert (record.state, record.origin) == (State.IMPORTED, Origin.SUBMITTED)


async def test_the_orphan_of_a_rejected_post_joins_by_request_id_when_its_event_comes_after(
    store: Store,
) -> None:
    submission_id = await store.record_submission(submission())
    await store.answer_submission(
        submission_id, status=SubmissionStatus.REJECTED, now=NOW, http_status=400, request_id=REQUEST_ID
    )

    orphan = await store.apply(obs(State.INITIALIZING, 0, batch=555), NOW)

    assert orphan.record.origin is Origin.SUBMITTED
    linked = await store.submission(submission_id)
    assert linked is not None
    assert (linked.status, linked.sis_batch_id) == (SubmissionStatus.REJECTED, 555)


async def test_the_orphan_of_a_rejected_post_joins_by_request_id_when_its_event_comes_first(
    store: Store,
) -> None:
    submission_id = await store.record_submission(submission())
    await store.apply(obs(State.INITIALIZING, 0, batch=555), NOW)

    joined = await store.answer_submission(
        submission_id, status=SubmissionStatus.REJECTED, now=NOW, http_status=400, request_id=REQUEST_ID
    )

    assert joined is not None
    record = await store.record(ACCOUNT, 555)
    assert record is not None
    assert record.origin is Origin.SUBMITTED
    linked = await store.submission(submission_id)
    assert linked is not None
    assert linked.sis_batch_id == 555


async def test_a_pending_submission_does_not_claim_an_import_with_its_request_id(store: Store) -> None:
    """Not answered yet: nothing says Canvas took it, so an event does not join it."""
    await store.record_submission(submission())

    applied = await store.apply(obs(State.INITIALIZING, 0), NOW)

    assert applied.record.origin is Origin.EXTERNAL


async def test_a_failed_submission_without_an_answer_joins_nothing(store: Store) -> None:
    submission_id = await store.record_submission(submission())
    await store.answer_submission(submission_id, status=SubmissionStatus.FAILED, now=NOW, http_status=502)

    applied = await store.apply(obs(State.INITIALIZING, 0), NOW)

    assert applied.record.origin is Origin.EXTERNAL


async def test_an_import_started_elsewhere_stays_external(store: Store) -> None:
    await store.record_submission(submission())

    applied = await store.apply(obs(State.CREATED, 0, request_id="another-request"), NOW)

    assert applied.record.origin is Origin.EXTERNAL
    assert await store.submissions() == {}


async def test_a_learned_account_is_cached_per_canvas_and_reference(store: Store) -> None:
    assert await store.cached_account("https://canvas.example.edu", "self") is None

    await store.cache_account("https://canvas.example.edu", "self", ACCOUNT, "1")

    assert await store.cached_account("https://canvas.example.edu", "self") == (ACCOUNT, "1")
    assert await store.cached_account("https://other.example.edu", "self") is None
