"""Decode an SQS message body into a typed Canvas Live Event, or say why it cannot be one.

Most of a busy queue is Live Events we drop (logins, submissions, page views...). For those we
read only ``metadata.event_name``: msgspec skips every other field without building objects, and
the ``body`` is never parsed. SIS batch events are validated strictly (docs/canvas.md, "Live
Events of SIS imports").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

from consumer.core.tracker import ALL_STATES, State

MAX_BODY_CHARS: Final = 256 * 1024
"""Canvas events are a few KiB; anything this large is not one."""

MAX_ID: Final = 2**63 - 1
"""Ids are stored as SQLite INTEGERs (signed 64-bit); Canvas's ids are far below."""
MAX_KEY_CHARS: Final = 255
"""Identifiers that become part of a store key (DynamoDB allows 1-2 KB); Canvas's are ~40 chars."""
MAX_AHEAD: Final = timedelta(days=1)
"""How far ahead of our clock an event may claim to be. Clocks differ by seconds, a mislabelled
time zone by hours; a time beyond that is not believed: it would pin "last success" for years."""

SIS_EVENT_NAMES: Final = frozenset({"sis_batch_created", "sis_batch_updated"})


@dataclass(frozen=True, slots=True)
class SisBatchEvent:
    name: str
    account: str
    """The root account's UUID (`metadata.root_account_uuid`): the stable account identity."""
    sis_batch_id: int
    account_id: str
    """The root account's local id from the body, as Canvas's API paths use it."""
    state: State
    event_time: datetime
    """Always timezone-aware UTC."""
    root_account_id: str | None = None
    request_id: str | None = None
    developer_key_id: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class OtherEvent:
    name: str


@dataclass(frozen=True, slots=True)
class Undecodable:
    """A message that is no Live Event we can read, and why (a value, not an exception)."""

    reason: str
    event_name: str | None = None
    """Set when the message was a SIS event that failed validation."""


LiveEvent = SisBatchEvent | OtherEvent


class _Head(msgspec.Struct):
    # Not `msgspec.Raw | None`: msgspec then accepts only `null` and rejects every object.
    # An absent field stays the empty Raw; `_absent` also treats a JSON `null` as absent.
    metadata: msgspec.Raw = msgspec.Raw()
    body: msgspec.Raw = msgspec.Raw()
    # An SNS topic without raw delivery wraps the event (docs/canvas.md, "The queue").
    Type: str | None = None
    Message: str | None = None


class _Name(msgspec.Struct):
    event_name: str | None = None


_Id = str | int


class _SisMetadata(msgspec.Struct):
    event_name: str
    event_time: str
    root_account_uuid: str
    root_account_id: _Id | None = None
    request_id: str | None = None
    developer_key_id: _Id | None = None
    user_agent: str | None = None


class _SisBody(msgspec.Struct):
    sis_batch_id: _Id
    account_id: _Id
    workflow_state: str


_head_decoder = msgspec.json.Decoder(_Head)
_name_decoder = msgspec.json.Decoder(_Name)
_sis_metadata_decoder = msgspec.json.Decoder(_SisMetadata)
_sis_body_decoder = msgspec.json.Decoder(_SisBody)


def decode(raw: str | bytes) -> LiveEvent | Undecodable:
    """Classify one message body. Never raises."""
    if len(raw) > MAX_BODY_CHARS:
        return Undecodable(f"body too large: {len(raw)} > {MAX_BODY_CHARS}")
    try:
        return _decode(raw)
    except RecursionError:  # msgspec guards its recursion: the body is just too deep to be an event
        return Undecodable("nested too deeply to be a Live Event")
    except UnicodeEncodeError:  # a str body msgspec cannot encode back to UTF-8
        return Undecodable("not valid Unicode: it holds a lone surrogate")


def too_far_ahead(event: SisBatchEvent, now: datetime) -> str | None:
    """Why the event's time cannot be believed at `now` (our clock), or None."""
    if event.event_time - now <= MAX_AHEAD:
        return None
    return f"metadata.event_time {event.event_time.isoformat()} is ahead of our clock"


def _decode(raw: str | bytes) -> LiveEvent | Undecodable:
    try:
        head = _head_decoder.decode(raw)
    except msgspec.ValidationError as exc:
        return Undecodable(f"not a Live Event object: {exc}")
    except msgspec.DecodeError as exc:
        return Undecodable(f"not valid JSON: {exc}")
    if _absent(head.metadata) and head.Type == "Notification" and head.Message is not None:
        return _decode_unwrapped(head.Message)
    return _decode_head(head)


def _decode_unwrapped(message: str) -> LiveEvent | Undecodable:
    # No size check of its own: the envelope around it already passed the outer one.
    try:
        head = _head_decoder.decode(message)
    except msgspec.ValidationError as exc:
        return Undecodable(f"SNS message is not a Live Event object: {exc}")
    except msgspec.DecodeError as exc:
        return Undecodable(f"SNS message is not valid JSON: {exc}")
    return _decode_head(head)


def _decode_head(head: _Head) -> LiveEvent | Undecodable:
    if _absent(head.metadata):
        return Undecodable("missing metadata")
    try:
        name = _name_decoder.decode(head.metadata).event_name
    except msgspec.DecodeError as exc:  # ValidationError is a subclass
        return Undecodable(f"invalid metadata: {exc}")
    if not name:
        return Undecodable("missing metadata.event_name")
    if name not in SIS_EVENT_NAMES:
        return OtherEvent(name)
    if _absent(head.body):
        return Undecodable(f"{name}: missing body", name)
    return _decode_sis(name, head.metadata, head.body)


def _decode_sis(name: str, raw_metadata: msgspec.Raw, raw_body: msgspec.Raw) -> LiveEvent | Undecodable:
    try:
        meta = _sis_metadata_decoder.decode(raw_metadata)
    except msgspec.DecodeError as exc:
        return Undecodable(f"{name}: invalid metadata: {_path(exc, 'metadata')}", name)
    try:
        body = _sis_body_decoder.decode(raw_body)
    except msgspec.DecodeError as exc:
        return Undecodable(f"{name}: invalid body: {_path(exc, 'body')}", name)

    sis_batch_id = _local_id(body.sis_batch_id)
    if sis_batch_id is None:
        return Undecodable(f"{name}: body.sis_batch_id is not a non-negative integer id below 2^63", name)
    account_id = _local_id(body.account_id)
    if account_id is None:
        return Undecodable(f"{name}: body.account_id is not a non-negative integer id below 2^63", name)
    if body.workflow_state not in ALL_STATES:
        return Undecodable(f"{name}: unknown body.workflow_state {body.workflow_state[:40]!r}", name)
    if not meta.root_account_uuid:
        return Undecodable(f"{name}: empty metadata.root_account_uuid", name)
    for field, value in (("root_account_uuid", meta.root_account_uuid), ("request_id", meta.request_id)):
        if value is not None and len(value) > MAX_KEY_CHARS:
            return Undecodable(f"{name}: metadata.{field} is longer than {MAX_KEY_CHARS} characters", name)
    event_time = parse_event_time(meta.event_time)
    if event_time is None:
        return Undecodable(f"{name}: metadata.event_time is not ISO 8601: {meta.event_time[:40]!r}", name)
    return SisBatchEvent(
        name=name,
        account=meta.root_account_uuid,
        sis_batch_id=sis_batch_id,
        account_id=str(account_id),
        state=State(body.workflow_state),
        event_time=event_time,
        root_account_id=_optional_id(meta.root_account_id),
        request_id=meta.request_id or None,
        developer_key_id=_optional_id(meta.developer_key_id),
        user_agent=meta.user_agent or None,
    )


def parse_event_time(text: str) -> datetime | None:
    """ISO 8601 with any offset, normalised to UTC.

    Canvas writes ``...Z`` with milliseconds but documents the offset as unspecified. A time with
    no offset at all is taken as UTC: Canvas's servers run in UTC.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:  # e.g. year 1 with a positive offset: before datetime.min in UTC
        return None


_NULL: Final = msgspec.Raw(b"null")


def _absent(raw: msgspec.Raw) -> bool:
    return len(raw) == 0 or raw == _NULL


def _local_id(value: str | int) -> int | None:
    if isinstance(value, str):
        # Never int() a long string: past 4,300 digits it raises instead of answering.
        if not (value.isascii() and value.isdigit()) or len(value.lstrip("0")) > len(str(MAX_ID)):
            return None
        value = int(value)
    return value if 0 <= value <= MAX_ID else None


def _optional_id(value: str | int | None) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _path(exc: msgspec.DecodeError, root: str) -> str:
    # msgspec reports paths from the decoded fragment's root (`$`); name the fragment instead.
    return str(exc).replace("`$", f"`{root}")
