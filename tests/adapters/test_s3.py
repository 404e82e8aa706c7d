"""The S3 adapter against moto's server: object versions, the size limit, tags, and a gone object."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from consumer.adapters.s3 import S3Objects, open_s3
from consumer.core.submission import SourceObject
from consumer.errors import ObjectGone, ObjectStoreError
from consumer.sandbox.local_sqs import REGION, DropFolder, LocalSqs, Queues

KEY = "nightly/users.csv"


@pytest.fixture
def drop_folder(local_sqs: LocalSqs) -> DropFolder:
    return local_sqs.create_drop_folder()


@pytest.fixture
async def objects(queues: Queues, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3Objects]:
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    async with open_s3(region=REGION, hook=lambda _op, _result: None) as s3:
        yield s3


async def test_an_object_version_is_read_as_it_was_uploaded_after_a_newer_one(
    objects: S3Objects, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    s3 = local_sqs.s3_client()
    old = s3.put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"first")
    s3.put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"second")

    fetched = await objects.fetch(drop_folder.bucket, KEY, old["VersionId"], max_bytes=100)

    assert fetched.content == b"first"
    assert (fetched.size, fetched.version_id) == (5, old["VersionId"])
    assert fetched.etag == old["ETag"].strip('"')


async def test_without_a_version_the_latest_is_read_with_its_version_id(
    objects: S3Objects, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    put = local_sqs.s3_client().put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"latest")

    fetched = await objects.fetch(drop_folder.bucket, KEY, None, max_bytes=100)

    assert (fetched.content, fetched.version_id) == (b"latest", put["VersionId"])


async def test_an_object_over_the_limit_is_not_read(
    objects: S3Objects, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    local_sqs.s3_client().put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"x" * 1000)

    fetched = await objects.fetch(drop_folder.bucket, KEY, None, max_bytes=999)

    assert (fetched.size, fetched.content) == (1000, None)


async def test_a_deleted_object_is_gone_and_a_missing_bucket_is_an_error_to_retry(
    objects: S3Objects, drop_folder: DropFolder
) -> None:
    with pytest.raises(ObjectGone):
        await objects.fetch(drop_folder.bucket, "nightly/never.csv", None, max_bytes=100)
    with pytest.raises(ObjectStoreError) as raised:
        await objects.fetch("no-such-bucket-here", KEY, None, max_bytes=100)
    assert raised.value.retryable


async def test_tags_are_written_and_read_on_one_version(
    objects: S3Objects, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    s3 = local_sqs.s3_client()
    old = s3.put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"first")
    new = s3.put_object(Bucket=drop_folder.bucket, Key=KEY, Body=b"second")
    source = SourceObject(drop_folder.bucket, KEY, old["ETag"], version_id=old["VersionId"])

    await objects.put_tags(source, {"sis-consumer-status": "imported", "owner": "registrar"})

    assert await objects.tags(source) == {"sis-consumer-status": "imported", "owner": "registrar"}
    newer = s3.get_object_tagging(Bucket=drop_folder.bucket, Key=KEY, VersionId=new["VersionId"])
    assert newer["TagSet"] == []
