"""The Live Events the simulated Canvas puts on the queue (docs/canvas.md, "Live Events of SIS
imports"), read back from SQS."""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsInbox
from tests.support.sandbox_http import COURSES_CSV, post_import

REQUEST_KEYS = {
    "root_account_uuid",
    "root_account_id",
    "root_account_lti_guid",
    "user_login",
    "user_account_id",
    "user_sis_id",
    "user_id",
    "time_zone",
    "developer_key_id",
    "real_user_id",
    "context_type",
    "context_id",
    "context_sis_source_id",
    "context_account_id",
    "context_role",
    "request_id",
    "session_id",
    "hostname",
    "http_method",
    "user_agent",
    "client_ip",
    "url",
    "referrer",
    "producer",
    "event_name",
    "event_time",
}
JOB_KEYS = {
    "job_id",
    "job_tag",
    "producer",
    "root_account_id",
    "root_account_uuid",
    "root_account_lti_guid",
    "event_name",
    "event_time",
}


def states(events: list[dict[str, Any]]) -> list[str]:
    return [e["body"]["workflow_state"] for e in events]


async def finished_and_received(
    canvas: SimulatedCanvas, inbox: SqsInbox, import_id: int, *end: str
) -> list[dict[str, Any]]:
    """Wait for the import's end state, then for every message Canvas sent to be on the queue."""
    await canvas.wait_for_state(import_id, *end)
    await canvas.flush()
    return await inbox.collect(len(canvas.published))


async def test_created_event_at_initializing_carries_the_posts_request_metadata(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas)

    first = (await inbox.collect(1))[0]

    assert first["body"] == {
        "sis_batch_id": str(answer.body["id"]),
        "account_id": "1",
        "workflow_state": "initializing",
    }
    assert set(first["metadata"]) == REQUEST_KEYS
    assert first["metadata"]["event_name"] == "sis_batch_created"
    assert first["metadata"]["request_id"] == answer.headers["X-Request-Context-Id"]
    assert first["metadata"]["http_method"] == "POST"
    assert first["metadata"]["user_login"] == canvas.account(1).admin.login_id


async def test_created_state_event_also_carries_request_metadata(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas)

    second = (await inbox.collect(2))[1]

    assert second["body"]["workflow_state"] == "created"
    assert second["metadata"]["event_name"] == "sis_batch_updated"
    assert set(second["metadata"]) == REQUEST_KEYS
    assert second["metadata"]["request_id"] == answer.headers["X-Request-Context-Id"]


async def test_events_from_the_import_job_carry_only_job_metadata(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas)

    events = await finished_and_received(canvas, inbox, answer.body["id"], "imported")

    assert states(events) == ["initializing", "created", "importing", "imported"]
    for event in events[2:]:
        assert set(event["metadata"]) == JOB_KEYS
        assert not {"request_id", "url", "user_id", "user_login"} & set(event["metadata"])


async def test_body_ids_are_local_strings_and_metadata_ids_are_global(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas, account_id=2)

    events = await finished_and_received(canvas, inbox, answer.body["id"], "imported")

    shard = canvas.account(2).shard
    for event in events:
        body, metadata = event["body"], event["metadata"]
        assert body["sis_batch_id"] == str(answer.body["id"])
        assert body["account_id"] == "2"
        assert metadata["root_account_id"] == str(shard * 10**13 + 2)
    assert events[0]["metadata"]["user_id"] == str(shard * 10**13 + canvas.account(2).admin.id)


async def test_event_time_is_utc_with_milliseconds_and_z(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(http, canvas)

    events = await finished_and_received(canvas, inbox, answer.body["id"], "imported")

    for event in events:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", event["metadata"]["event_time"])


async def test_metadata_url_is_the_full_request_url_with_a_query_token(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    token = canvas.tokens[1]
    answer = await post_import(
        http, canvas, account_id=None, target="1", query=f"?access_token={token}&import_type=instructure_csv"
    )

    first = (await inbox.collect(1))[0]

    assert answer.status == 200
    assert first["metadata"]["url"] == (
        f"{canvas.url}/api/v1/accounts/1/sis_imports?access_token={token}&import_type=instructure_csv"
    )


async def test_cleanup_batch_publishes_no_event(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    answer = await post_import(
        http,
        canvas,
        data=COURSES_CSV,
        file_name="courses.csv",
        fields={"batch_mode": "1", "batch_mode_term_id": "1"},
    )

    events = await finished_and_received(canvas, inbox, answer.body["id"], "imported")

    assert "cleanup_batch" in canvas.imports[answer.body["id"]].states
    assert states(events) == ["initializing", "created", "importing", "imported"]


async def test_an_import_sitting_in_cleanup_batch_still_shows_importing_as_its_last_event(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    canvas.plan(1, stuck=True, stuck_in="cleanup_batch")
    answer = await post_import(http, canvas, fields={"batch_mode": "1", "batch_mode_term_id": "1"})

    await canvas.wait_for_state(answer.body["id"], "cleanup_batch")
    await canvas.flush()
    events = await inbox.collect(len(canvas.published))

    assert states(events)[-1] == "importing"


async def test_abort_through_the_api_publishes_no_event(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    canvas.plan(1, stuck=True)
    answer = await post_import(http, canvas)
    import_id = answer.body["id"]
    await canvas.wait_for_state(import_id, "importing")

    async with http.put(
        f"{canvas.url}/api/v1/accounts/1/sis_imports/{import_id}/abort", headers=canvas.headers(1)
    ) as response:
        assert (await response.json())["workflow_state"] == "aborted"
    await canvas.flush()
    events = await inbox.collect(len(canvas.published))

    assert canvas.imports[import_id].workflow_state == "aborted"
    assert states(events) == ["initializing", "created", "importing"]


async def test_abort_knob_aborts_silently(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, inbox: SqsInbox
) -> None:
    canvas.plan(1, "aborted")
    answer = await post_import(http, canvas)

    events = await finished_and_received(canvas, inbox, answer.body["id"], "aborted")

    assert states(events) == ["initializing", "created", "importing"]
    assert canvas.imports[answer.body["id"]].ended_at is None  # update_all: no ended_at


async def test_an_import_started_in_the_ui_publishes_its_own_request_metadata(
    canvas: SimulatedCanvas, inbox: SqsInbox
) -> None:
    imp = await canvas.start_import(2)

    events = await inbox.collect(2)

    assert canvas.requests == []
    assert events[0]["body"]["sis_batch_id"] == str(imp.id)
    assert events[0]["metadata"]["request_id"] == imp.request_id
    assert events[0]["metadata"]["session_id"]
    assert "/api/v1/" not in events[0]["metadata"]["url"]
