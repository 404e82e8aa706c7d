"""`consumer.core.events.decode`: SQS message body -> SisBatchEvent | OtherEvent | Undecodable."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from consumer.core.events import (
    MAX_BODY_CHARS,
    OtherEvent,
    SisBatchEvent,
    Undecodable,
    decode,
    too_far_ahead,
)
from consumer.core.tracker import State
from tests.support.live_events import sns_wrapped

ACCOUNT_UUID = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
EVENT_TIME = "2020-01-14T14:14:11.498Z"
EVENT_INSTANT = datetime(2020, 1, 14, 14, 14, 11, 498000, tzinfo=UTC)
TOKEN = "7~secretTokenValue"


def request_metadata(event_name: str = "sis_batch_created") -> dict[str, Any]:
    """Metadata of an `initializing`/`created` event: it comes from the API request (docs/canvas.md,
    "Metadata")."""
    return {
        "root_account_uuid": ACCOUNT_UUID,
        "root_account_id": "10000000000001",
        "root_account_lti_guid": "794d72b707af6ea82cfe3d5d473f16888a8366c7.canvas.instructure.com",
        "user_login": "sis-integration",
        "user_account_id": "10000000000001",
        "user_sis_id": None,
        "user_id": "10000000000123",
        "time_zone": "America/Denver",
        "developer_key_id": "170000000000056",
        "real_user_id": None,
        "context_type": "Account",
        "context_id": "10000000000001",
        "context_sis_source_id": None,
        "context_account_id": "10000000000001",
        "context_role": None,
        "request_id": "1dd9dc6f-2fb0-4c25-b5b8-1a6a5b8d6f0e",
        "session_id": None,
        "hostname": "school.instructure.com",
        "http_method": "POST",
        "user_agent": "sis-uploader/2.1 python-requests/2.31",
        "client_ip": "203.0.113.7",
        "url": f"https://school.instructure.com/api/v1/accounts/1/sis_imports?access_token={TOKEN}",
        "referrer": None,
        "producer": "canvas",
        "event_name": event_name,
        "event_time": EVENT_TIME,
    }


def job_metadata(event_name: str = "sis_batch_updated") -> dict[str, Any]:
    """Metadata of a later event: it comes from a background job (docs/canvas.md, "Metadata")."""
    return {
        "job_id": "1020000000345678",
        "job_tag": "SisBatch#process_without_send_later",
        "producer": "canvas",
        "root_account_id": "10000000000001",
        "root_account_uuid": ACCOUNT_UUID,
        "root_account_lti_guid": "794d72b707af6ea82cfe3d5d473f16888a8366c7.canvas.instructure.com",
        "event_name": event_name,
        "event_time": EVENT_TIME,
    }


def sis_body(workflow_state: str = "initializing") -> dict[str, Any]:
    return {"sis_batch_id": "31048324", "account_id": "1", "workflow_state": workflow_state}


def message(metadata: dict[str, Any], body: Any) -> str:
    return json.dumps({"metadata": metadata, "body": body})


def decode_sis(raw: str) -> SisBatchEvent:
    event = decode(raw)
    assert isinstance(event, SisBatchEvent), event
    return event


def decode_error(raw: str | bytes) -> str:
    result = decode(raw)
    assert isinstance(result, Undecodable), result
    return result.reason


# --- SIS batch events -----------------------------------------------------------------------


def test_sis_batch_created_with_request_metadata_decodes_to_sis_batch_event() -> None:
    raw = message(request_metadata("sis_batch_created"), sis_body("initializing"))

    assert decode(raw) == SisBatchEvent(
        name="sis_batch_created",
        account=ACCOUNT_UUID,
        sis_batch_id=31048324,
        account_id="1",
        state=State.INITIALIZING,
        event_time=EVENT_INSTANT,
        root_account_id="10000000000001",
        request_id="1dd9dc6f-2fb0-4c25-b5b8-1a6a5b8d6f0e",
        developer_key_id="170000000000056",
        user_agent="sis-uploader/2.1 python-requests/2.31",
    )


def test_bytes_body_decodes_like_str_body() -> None:
    raw = message(request_metadata(), sis_body())

    assert decode(raw.encode()) == decode(raw)


def test_decoded_event_does_not_carry_the_request_url_or_its_token() -> None:
    result = decode(message(request_metadata(), sis_body()))

    assert isinstance(result, SisBatchEvent)
    assert TOKEN not in repr(result)


def test_sis_batch_updated_with_job_metadata_only_decodes_without_request_fields() -> None:
    raw = message(job_metadata("sis_batch_updated"), sis_body("imported"))

    assert decode(raw) == SisBatchEvent(
        name="sis_batch_updated",
        account=ACCOUNT_UUID,
        sis_batch_id=31048324,
        account_id="1",
        state=State.IMPORTED,
        event_time=EVENT_INSTANT,
        root_account_id="10000000000001",
        request_id=None,
        developer_key_id=None,
        user_agent=None,
    )


def test_integer_ids_are_accepted_in_body_and_metadata() -> None:
    metadata = job_metadata()
    metadata["root_account_id"] = 10000000000001
    body = {"sis_batch_id": 31048324, "account_id": 1, "workflow_state": "importing"}

    result = decode(message(metadata, body))

    assert isinstance(result, SisBatchEvent)
    assert (result.sis_batch_id, result.account_id, result.root_account_id) == (
        31048324,
        "1",
        "10000000000001",
    )


@pytest.mark.parametrize("state", sorted(State))
def test_every_workflow_state_is_accepted(state: State) -> None:
    result = decode(message(job_metadata(), sis_body(state.value)))

    assert isinstance(result, SisBatchEvent)
    assert result.state is state


def test_sns_wrapped_event_decodes_like_the_raw_event() -> None:
    raw = message(request_metadata(), sis_body())

    assert decode(sns_wrapped(raw)) == decode(raw)
    assert isinstance(decode(raw), SisBatchEvent)


def test_sns_wrapped_other_event_decodes_to_other_event() -> None:
    inner = message({"event_name": "logged_in", "event_time": EVENT_TIME}, {"redirect_url": None})

    assert decode(sns_wrapped(inner)) == OtherEvent("logged_in")


@pytest.mark.parametrize(
    "event_time",
    [
        "2020-01-14T14:14:11.498Z",
        "2020-01-14T14:14:11.498+00:00",
        "2020-01-14T16:14:11.498+02:00",
        "2020-01-14T09:14:11.498-05:00",
        "2020-01-14T14:14:11.498",
    ],
    ids=["Z", "+00:00", "+02:00", "-05:00", "no-offset-is-utc"],
)
def test_event_time_offsets_normalise_to_the_same_utc_instant(event_time: str) -> None:
    metadata = job_metadata()
    metadata["event_time"] = event_time

    result = decode(message(metadata, sis_body("created")))

    assert isinstance(result, SisBatchEvent)
    assert result.event_time == EVENT_INSTANT
    assert result.event_time.tzinfo is UTC


# --- other Live Events ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event_name", "body"),
    [
        ("logged_in", {"redirect_url": "https://school.instructure.com/"}),
        (
            "asset_accessed",
            {
                "asset_id": ["not", {"an": "id"}],
                "asset_type": 12.5e300,
                "asset_subtype": None,
                "category": True,
                "level": {"nested": [[], {}]},
            },
        ),
        ("asset_accessed", "a string body"),
        ("asset_accessed", [1, 2, 3]),
        ("submission_created", None),
    ],
    ids=["logged_in", "weird-typed-fields", "string-body", "array-body", "null-body"],
)
def test_other_live_event_decodes_to_other_event_without_validating_body(event_name: str, body: Any) -> None:
    metadata = {"event_name": event_name, "event_time": "not even a time", "user_id": 5}

    assert decode(message(metadata, body)) == OtherEvent(event_name)


def test_other_live_event_without_body_decodes_to_other_event() -> None:
    raw = json.dumps({"metadata": {"event_name": "logged_out"}})

    assert decode(raw) == OtherEvent("logged_out")


# --- invalid messages: one reason each ------------------------------------------------------


def test_not_json_is_invalid_with_reason_not_valid_json() -> None:
    assert "not valid JSON" in decode_error('{"metadata": {"event_name": ')


@pytest.mark.parametrize(
    ("raw", "got"),
    [("[1, 2]", "array"), ("42", "int"), ('"sis_batch_created"', "str"), ("null", "null")],
    ids=["array", "number", "string", "null"],
)
def test_json_that_is_not_an_object_is_invalid_naming_what_it_got(raw: str, got: str) -> None:
    reason = decode_error(raw)

    assert "not a Live Event object" in reason
    assert f"got `{got}`" in reason


@pytest.mark.parametrize("kind", [str, bytes])
def test_body_larger_than_max_is_invalid_as_too_large(kind: type[str] | type[bytes]) -> None:
    raw = message(job_metadata(), {**sis_body(), "padding": "x" * MAX_BODY_CHARS})
    payload = raw if kind is str else raw.encode()

    reason = decode_error(payload)

    assert "too large" in reason
    assert str(MAX_BODY_CHARS) in reason


def test_body_of_exactly_max_chars_is_not_rejected_as_too_large() -> None:
    raw = message(job_metadata(), sis_body())
    padded = raw + " " * (MAX_BODY_CHARS - len(raw))

    assert isinstance(decode(padded), SisBatchEvent)


@pytest.mark.parametrize(
    "raw",
    ['{"body": {"sis_batch_id": "1"}}', '{"metadata": null, "body": {}}', "{}"],
    ids=["absent", "null", "empty-object"],
)
def test_missing_metadata_is_invalid(raw: str) -> None:
    assert decode_error(raw) == "missing metadata"


@pytest.mark.parametrize(
    "metadata",
    [{"event_time": EVENT_TIME}, {"event_name": "", "event_time": EVENT_TIME}],
    ids=["absent", "empty"],
)
def test_missing_event_name_is_invalid(metadata: dict[str, Any]) -> None:
    assert decode_error(message(metadata, {})) == "missing metadata.event_name"


def test_metadata_that_is_not_an_object_is_invalid_metadata() -> None:
    assert "invalid metadata" in decode_error(json.dumps({"metadata": ["sis_batch_created"]}))


@pytest.mark.parametrize(
    "envelope",
    [{"metadata": job_metadata()}, {"metadata": job_metadata(), "body": None}],
    ids=["absent", "null"],
)
def test_sis_event_without_body_is_invalid(envelope: dict[str, Any]) -> None:
    assert decode_error(json.dumps(envelope)) == "sis_batch_updated: missing body"


@pytest.mark.parametrize("field", ["sis_batch_id", "account_id", "workflow_state"])
def test_sis_event_missing_body_field_is_invalid_naming_the_field(field: str) -> None:
    body = sis_body()
    del body[field]

    reason = decode_error(message(job_metadata(), body))

    assert reason.startswith("sis_batch_updated: invalid body")
    assert f"missing required field `{field}`" in reason


@pytest.mark.parametrize("field", ["sis_batch_id", "account_id"])
@pytest.mark.parametrize(
    "value",
    ["12a", "-1", "١٢", "", " 12", "1.0", -1],
    ids=["letter", "negative-str", "arabic-indic-digits", "empty", "space", "decimal", "negative-int"],
)
def test_sis_event_with_non_digit_id_is_invalid_naming_the_field(field: str, value: str | int) -> None:
    body: dict[str, Any] = {**sis_body(), field: value}

    reason = decode_error(message(job_metadata(), body))

    assert reason == f"sis_batch_updated: body.{field} is not a non-negative integer id below 2^63"


@pytest.mark.parametrize("value", [1.5, True, None, ["1"]], ids=["float", "bool", "null", "list"])
def test_sis_event_with_id_of_wrong_json_type_is_invalid_at_its_path(value: Any) -> None:
    body: dict[str, Any] = {**sis_body(), "sis_batch_id": value}

    reason = decode_error(message(job_metadata(), body))

    assert reason.startswith("sis_batch_updated: invalid body")
    assert "`body.sis_batch_id`" in reason


@pytest.mark.parametrize("state", ["finished", "IMPORTED", "", "cleanup"])
def test_sis_event_with_unknown_workflow_state_is_invalid(state: str) -> None:
    reason = decode_error(message(job_metadata(), sis_body(state)))

    assert reason == f"sis_batch_updated: unknown body.workflow_state {state!r}"


def test_missing_root_account_uuid_is_invalid_naming_the_field() -> None:
    metadata = job_metadata()
    del metadata["root_account_uuid"]

    reason = decode_error(message(metadata, sis_body()))

    assert reason.startswith("sis_batch_updated: invalid metadata")
    assert "`root_account_uuid`" in reason


def test_empty_root_account_uuid_is_invalid() -> None:
    metadata = {**job_metadata(), "root_account_uuid": ""}

    reason = decode_error(message(metadata, sis_body()))

    assert reason == "sis_batch_updated: empty metadata.root_account_uuid"


@pytest.mark.parametrize(
    "event_time",
    [
        "yesterday",
        "",
        "2020-13-01T00:00:00Z",
        "2020-01-14 14:14:11 UTC",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:00:00-05:00",
    ],
    ids=["word", "empty", "month-13", "trailing-zone-name", "before-min-in-utc", "after-max-in-utc"],
)
def test_bad_event_time_is_invalid_quoting_the_value(event_time: str) -> None:
    metadata = {**job_metadata(), "event_time": event_time}

    reason = decode_error(message(metadata, sis_body()))

    assert reason == f"sis_batch_updated: metadata.event_time is not ISO 8601: {event_time!r}"


def test_missing_event_time_is_invalid_naming_the_field() -> None:
    metadata = job_metadata()
    del metadata["event_time"]

    reason = decode_error(message(metadata, sis_body()))

    assert reason.startswith("sis_batch_updated: invalid metadata")
    assert "`event_time`" in reason


def test_sns_message_that_is_not_json_is_invalid() -> None:
    reason = decode_error(sns_wrapped("{this is not json"))

    assert reason.startswith("SNS message is not valid JSON")


def test_sns_message_that_is_not_an_object_is_invalid() -> None:
    reason = decode_error(sns_wrapped("[1, 2]"))

    assert reason.startswith("SNS message is not a Live Event object")


def test_an_invalid_sis_event_names_its_event_for_the_kind_label() -> None:
    body = json.dumps(
        {
            "metadata": {"event_name": "sis_batch_updated", "event_time": "2020-01-14T14:14:11.498Z"},
            "body": {"sis_batch_id": "1", "account_id": "1", "workflow_state": "imported"},
        }
    )
    error = decode(body)
    assert isinstance(error, Undecodable)
    assert error.event_name == "sis_batch_updated"


def test_a_message_that_is_not_an_event_has_no_event_name() -> None:
    error = decode("[1, 2]")
    assert isinstance(error, Undecodable)
    assert error.event_name is None


# --- hostile bodies: each ends as a Undecodable with a reason, never an exception -------------


@pytest.mark.parametrize(
    "value",
    [str(2**63), 2**63, "9" * 5000, "0" * 30 + "1" * 20],
    ids=["2^63-str", "2^63-int", "5000-digits", "20-significant-digits"],
)
def test_an_id_that_does_not_fit_a_signed_64_bit_integer_is_invalid(value: str | int) -> None:
    body: dict[str, Any] = {**sis_body(), "sis_batch_id": value}

    reason = decode_error(message(job_metadata(), body))

    assert reason == "sis_batch_updated: body.sis_batch_id is not a non-negative integer id below 2^63"


def test_the_largest_signed_64_bit_id_is_accepted() -> None:
    body: dict[str, Any] = {**sis_body(), "sis_batch_id": str(2**63 - 1), "account_id": 2**63 - 1}

    event = decode(message(job_metadata(), body))

    assert isinstance(event, SisBatchEvent)
    assert (event.sis_batch_id, event.account_id) == (2**63 - 1, str(2**63 - 1))


@pytest.mark.parametrize("where", ["metadata", "body", "other-event-body", "sns-message"])
def test_json_nested_thousands_of_levels_deep_is_invalid_as_too_deep(where: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    raw = {
        "metadata": f'{{"metadata": {{"event_name": "sis_batch_updated", "x": {deep}}}}}',
        "body": f'{{"metadata": {json.dumps(job_metadata())}, "body": {deep}}}',
        "other-event-body": f'{{"metadata": {{"event_name": "logged_in"}}, "x": {deep}}}',
        "sns-message": sns_wrapped(f'{{"metadata": {{"event_name": "logged_in"}}, "body": {deep}}}'),
    }[where]

    reason = decode_error(raw)

    assert "nested too deeply" in reason


def test_a_body_that_is_not_valid_unicode_is_invalid() -> None:
    raw = message(job_metadata(), sis_body()).replace(ACCOUNT_UUID, "\ud800")

    assert decode_error(raw) == "not valid Unicode: it holds a lone surrogate"


@pytest.mark.parametrize("field", ["root_account_uuid", "request_id"])
def test_an_identifier_longer_than_a_store_key_may_be_is_invalid(field: str) -> None:
    metadata = {**request_metadata(), field: "x" * 256}

    reason = decode_error(message(metadata, sis_body()))

    assert reason == f"sis_batch_created: metadata.{field} is longer than 255 characters"


@pytest.mark.parametrize(
    ("event_time", "believed"),
    [("9999-12-31T23:59:59Z", False), ("2020-01-16T14:20:01Z", False), ("2020-01-15T14:20:00Z", True)],
    ids=["year-9999", "a-day-and-a-second-ahead", "a-day-ahead"],
)
def test_an_event_time_more_than_a_day_ahead_of_our_clock_is_not_believed(
    event_time: str, believed: bool
) -> None:
    event = decode_sis(message({**job_metadata(), "event_time": event_time}, sis_body()))
    now = datetime(2020, 1, 14, 14, 20, tzinfo=UTC)

    reason = too_far_ahead(event, now)

    assert (reason is None) is believed
    if reason is not None:
        assert reason == f"metadata.event_time {event.event_time.isoformat()} is ahead of our clock"
