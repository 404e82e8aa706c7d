"""Decoding the drop folder's S3 event notifications."""

from __future__ import annotations

import json
from typing import Any

from consumer.core.s3_events import (
    NotificationError,
    ObjectCreated,
    Records,
    S3TestEvent,
    decode_notification,
)


def notification(*records: dict[str, Any]) -> str:
    return json.dumps({"Records": list(records)})


def created(key: str, *, event: str = "ObjectCreated:Put", **obj: Any) -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "eventName": event,
        "s3": {"bucket": {"name": "sis-drop"}, "object": {"key": key, "size": 9, "eTag": "abc", **obj}},
    }


def test_an_object_created_record_gives_bucket_key_size_etag_version_and_sequencer() -> None:
    body = notification(created("nightly/a.zip", versionId="v1", sequencer="0055AED6DCD90281E5"))

    decoded = decode_notification(body)

    assert decoded == Records(
        (ObjectCreated("sis-drop", "nightly/a.zip", 9, "abc", "v1", "0055AED6DCD90281E5"),)
    )


def test_keys_are_url_decoded_slashes_spaces_and_plus_signs() -> None:
    decoded = decode_notification(notification(created("nightly%2Fusers+fall%2B2026.csv")))

    assert isinstance(decoded, Records)
    assert decoded.created[0].key == "nightly/users fall+2026.csv"


def test_the_test_event_s3_sends_when_configured_is_not_a_record() -> None:
    body = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "x", "Bucket": "sis-drop"})

    assert decode_notification(body) == S3TestEvent("sis-drop")


def test_other_event_types_are_named_not_submitted() -> None:
    body = notification(created("nightly/a.zip", event="ObjectRemoved:Delete"), created("nightly/b.zip"))

    decoded = decode_notification(body)

    assert isinstance(decoded, Records)
    assert [c.key for c in decoded.created] == ["nightly/b.zip"]
    assert decoded.others == ("ObjectRemoved:Delete",)


def test_a_notification_wrapped_by_sns_is_unwrapped() -> None:
    inner = notification(created("nightly/a.zip"))
    body = json.dumps({"Type": "Notification", "Message": inner, "TopicArn": "arn:aws:sns:x"})

    decoded = decode_notification(body)

    assert isinstance(decoded, Records)
    assert decoded.created[0].key == "nightly/a.zip"


def test_the_null_version_of_an_unversioned_upload_is_no_version() -> None:
    decoded = decode_notification(notification(created("nightly/a.zip", versionId="null")))

    assert isinstance(decoded, Records)
    assert decoded.created[0].version_id is None


def test_a_quoted_etag_is_unquoted() -> None:
    decoded = decode_notification(notification(created("a.zip", eTag='"abc"')))

    assert isinstance(decoded, Records)
    assert decoded.created[0].etag == "abc"


def test_what_is_not_a_notification_says_why() -> None:
    for body in (
        "not json",
        "{}",
        json.dumps({"Records": [{"eventName": "ObjectCreated:Put"}]}),
        "x" * 300_000,
    ):
        decoded = decode_notification(body)
        assert isinstance(decoded, NotificationError), body[:40]
        assert decoded.reason
