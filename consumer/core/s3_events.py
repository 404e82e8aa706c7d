"""Decode an S3 event notification from the drop folder's queue, or say why it cannot be one.

S3 delivers straight to SQS (or through an SNS topic, which wraps the body like a Live Event's);
configuring the notification first sends an `s3:TestEvent`, which is not a record. Object keys
arrive URL-encoded the way HTML forms are: `nightly%2Fa+b.zip` is `nightly/a b.zip`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

import msgspec

MAX_BODY_CHARS: Final = 256 * 1024
"""A notification lists a few records of a few hundred bytes each."""


@dataclass(frozen=True, slots=True)
class ObjectCreated:
    bucket: str
    key: str
    """Decoded: what `GetObject` takes."""
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None
    sequencer: str | None = None


@dataclass(frozen=True, slots=True)
class Records:
    created: tuple[ObjectCreated, ...]
    others: tuple[str, ...] = ()
    """The names of other events the notification carried (deletions, tagging...): ignored."""


@dataclass(frozen=True, slots=True)
class S3TestEvent:
    """What S3 sends once when the notification is configured."""

    bucket: str | None


@dataclass(frozen=True, slots=True)
class NotificationError:
    reason: str


Notification = Records | S3TestEvent | NotificationError


class _Object(msgspec.Struct):
    key: str
    size: int | None = None
    eTag: str | None = None
    versionId: str | None = None
    sequencer: str | None = None


class _Bucket(msgspec.Struct):
    name: str


class _S3(msgspec.Struct):
    bucket: _Bucket
    object: _Object


class _Record(msgspec.Struct):
    eventName: str
    s3: _S3 | None = None


class _Body(msgspec.Struct):
    Records: list[_Record] | None = None
    Event: str | None = None
    Bucket: str | None = None
    # An SNS topic without raw delivery wraps the notification.
    Type: str | None = None
    Message: str | None = None


_decoder = msgspec.json.Decoder(_Body)


def named_version(version_id: str | None) -> str | None:
    """A version id that names one upload. S3 says "null" for uploads while versioning is off or
    suspended: every such upload of the key shares it, so it names none."""
    return None if version_id in {None, "", "null"} else version_id


def decode_notification(body: str) -> Notification:
    if len(body) > MAX_BODY_CHARS:
        return NotificationError(f"body of {len(body)} characters is too large for an S3 notification")
    try:
        parsed = _decoder.decode(body)
    except msgspec.DecodeError as exc:
        return NotificationError(f"not an S3 event notification: {exc}")
    if parsed.Type == "Notification" and parsed.Message is not None:
        return decode_notification(parsed.Message)
    if parsed.Event == "s3:TestEvent":
        return S3TestEvent(parsed.Bucket)
    if parsed.Records is None:
        return NotificationError("not an S3 event notification: no Records")
    created, others = [], []
    for record in parsed.Records:
        if not record.eventName.startswith("ObjectCreated:"):
            others.append(record.eventName)
            continue
        if record.s3 is None:
            return NotificationError(f"{record.eventName} record without its s3 object")
        obj = record.s3.object
        created.append(
            ObjectCreated(
                bucket=record.s3.bucket.name,
                key=unquote_plus(obj.key),
                size=obj.size,
                etag=None if obj.eTag is None else obj.eTag.strip('"'),
                version_id=named_version(obj.versionId),
                sequencer=obj.sequencer,
            )
        )
    return Records(tuple(created), tuple(others))
