"""The drop folder's part of every store: one submission per object version, whoever asks and
however often, and the list of outcomes still to write back onto the objects."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from consumer.core.submission import SourceObject
from consumer.errors import AlreadySubmitted
from consumer.ports import Store
from tests.support.records import dropped, submission
from tests.support.stores import OpenStore


async def test_a_drop_folder_submission_reads_back_with_its_object(store: Store) -> None:
    source = dropped("nightly/fall 2026+spring.zip")

    submission_id = await store.record_submission(replace(submission(), source=source))

    read = await store.submission(submission_id)
    assert read is not None
    assert (read.source, read.reported) == (source, None)


async def test_an_object_version_is_submitted_once_and_a_second_attempt_names_the_first(store: Store) -> None:
    first = await store.record_submission(replace(submission(), source=dropped()))

    with pytest.raises(AlreadySubmitted) as raised:
        await store.record_submission(replace(submission(), source=dropped()))

    assert raised.value.submission_id == first
    assert [x.id for x in await store.unreported()] == [first]


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (dropped(version_id="v1"), dropped(version_id="v2")),
        (dropped(version_id=None), replace(dropped(version_id=None), sequencer="0062E9F6A1B2C3D4FF")),
        (dropped("nightly/a.zip"), dropped("nightly/b.zip")),
    ],
    ids=["another_version", "another_upload_without_versioning", "another_key"],
)
async def test_another_upload_is_another_submission(
    store: Store, one: SourceObject, other: SourceObject
) -> None:
    first = await store.record_submission(replace(submission(), source=one))
    second = await store.record_submission(replace(submission(), source=other))

    assert first != second


async def test_two_processes_claiming_one_object_version_at_once_record_one_submission(
    open_store: OpenStore,
) -> None:
    """Two replicas handed the same object (S3 may notify twice): exactly one may POST it."""
    async with open_store("replica-a") as a, open_store("replica-b") as b:
        results = await asyncio.gather(
            *(s.record_submission(replace(submission(), source=dropped())) for s in (a, b, a, b)),
            return_exceptions=True,
        )

        ids = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, AlreadySubmitted)]
        assert len(ids) == 1, results
        assert [r.submission_id for r in refused] == ids * 3
        assert [x.id for x in await a.unreported()] == ids


async def test_a_released_object_version_is_submitted_again_and_the_first_attempt_reported_retried(
    store: Store,
) -> None:
    """Canvas refused the POST unread (throttled): the next notification must be able to submit it."""
    first = await store.record_submission(replace(submission(), source=dropped()))

    await store.release_object(dropped())
    second = await store.record_submission(replace(submission(), source=dropped()))

    assert second != first
    was = await store.submission(first)
    assert was is not None
    assert was.reported == "retried"
    assert [x.id for x in await store.unreported()] == [second]


async def test_submissions_are_listed_until_their_outcome_is_reported_and_cli_ones_never(
    store: Store,
) -> None:
    await store.record_submission(submission())  # `sis-consumer submit`: no object to report onto
    a = await store.record_submission(replace(submission(), source=dropped("nightly/a.zip")))
    b = await store.record_submission(replace(submission(), source=dropped("nightly/b.zip")))

    await store.mark_reported(a, "imported")

    assert [x.id for x in await store.unreported()] == [b]
    reported = await store.submission(a)
    assert reported is not None
    assert reported.reported == "imported"
    with pytest.raises(AlreadySubmitted):  # reported, and still never submitted twice
        await store.record_submission(replace(submission(), source=dropped("nightly/a.zip")))
