"""The SIS Imports and Accounts API of the simulated Canvas (docs/canvas.md, "The SIS Imports API")."""

from __future__ import annotations

import re

import aiohttp
import pytest

from consumer.sandbox.accounts import Account
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.params import CREATE_PARAMS
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.sandbox_http import USERS_CSV, call, post_import

THROTTLE_HEADERS = ("X-Request-Context-Id", "X-Request-Cost", "X-Rate-Limit-Remaining")


async def test_no_token_is_401_with_the_usual_headers(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=None)

    assert answer.status == 401
    assert answer.body["errors"] == [{"message": "user authorization required"}]
    assert all(h in answer.headers for h in THROTTLE_HEADERS)


async def test_an_unknown_token_is_401(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    answer = await call(
        http,
        canvas,
        "GET",
        "/api/v1/accounts/self",
        account_id=None,
        headers={"Authorization": "Bearer nope"},
    )

    assert answer.status == 401
    assert answer.body["errors"] == [{"message": "Invalid access token."}]


async def test_a_token_works_as_access_token_query_parameter(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    path = f"/api/v1/accounts/self?access_token={canvas.tokens[2]}"

    answer = await call(http, canvas, "GET", path, account_id=None)

    assert answer.status == 200
    assert answer.body["id"] == 2


async def test_another_root_accounts_imports_are_401(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, canvas, "GET", "/api/v1/accounts/2/sis_imports", account_id=1)

    assert answer.status == 401


async def test_accounts_self_is_the_tokens_root_account(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=1)

    root = canvas.account(1)
    assert answer.body["id"] == 1
    assert answer.body["uuid"] == root.uuid
    assert answer.body["name"] == root.name
    assert answer.body["root_account_id"] is None


async def test_a_sub_account_names_its_root_account(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await call(http, canvas, "GET", "/api/v1/accounts/3", account_id=1)

    assert answer.body["root_account_id"] == 1
    assert answer.body["uuid"] == canvas.account(3).uuid


async def test_sis_imports_on_a_sub_account_are_400(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await post_import(http, canvas, 1, target="3")

    assert answer.status == 400
    assert answer.body == {"errors": ["SIS imports can only be executed on root accounts"]}
    assert canvas.imports == {}


async def test_every_response_gets_a_fresh_request_context_id(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    first = await call(http, canvas, "GET", "/api/v1/accounts/self")
    second = await call(http, canvas, "GET", "/api/v1/accounts/self")

    ids = {first.headers["X-Request-Context-Id"], second.headers["X-Request-Context-Id"]}
    assert len(ids) == 2
    assert all(re.fullmatch(r"[0-9a-f-]{36}", i) for i in ids)


@pytest.mark.parametrize("knobs", [Knobs(throttle_capacity=3, throttle_leak_per_second=0)])
async def test_a_burst_is_throttled_with_403_rate_limit_exceeded(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answers = [await call(http, canvas, "GET", "/api/v1/accounts/self") for _ in range(4)]

    assert [a.status for a in answers] == [200, 200, 200, 403]
    assert answers[3].body == "403 Forbidden (Rate Limit Exceeded)\n"
    assert answers[3].headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "X-Request-Context-Id" in answers[3].headers
    assert "X-Request-Cost" not in answers[3].headers  # nothing ran, nothing charged
    assert float(answers[3].headers["X-Rate-Limit-Remaining"]) == 0
    assert float(answers[0].headers["X-Rate-Limit-Remaining"]) == pytest.approx(2, abs=0.01)


@pytest.mark.parametrize(
    "knobs", [Knobs(throttle_capacity=2, throttle_leak_per_second=0, throttle_status=429)]
)
async def test_throttling_can_answer_429(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    answers = [await call(http, canvas, "GET", "/api/v1/accounts/self") for _ in range(3)]

    assert [a.status for a in answers] == [200, 200, 429]
    assert "Rate Limit Exceeded" in answers[2].body
    assert "X-Rate-Limit-Remaining" in answers[2].headers


@pytest.mark.parametrize("knobs", [Knobs(throttle_capacity=1, throttle_leak_per_second=0)])
async def test_throttling_is_per_token(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=1)

    assert (await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=1)).status == 403
    assert (await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=2)).status == 200


async def test_string_ids_accept_header_turns_ids_into_strings(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await post_import(
        http,
        canvas,
        headers={"Accept": "application/json+canvas-string-ids"},
        fields={"batch_mode": "1", "batch_mode_term_id": "2"},
    )

    assert answer.body["id"] == str(canvas.imports[int(answer.body["id"])].id)
    assert answer.body["batch_mode_term_id"] == "2"
    assert isinstance(answer.body["user"]["id"], str)
    assert isinstance(answer.body["progress"], int)


async def test_ids_are_integers_by_default(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    answer = await post_import(http, canvas)

    assert isinstance(answer.body["id"], int)
    assert answer.body["workflow_state"] == "created"


async def test_list_is_newest_first_and_paginated_with_link_headers(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.stop_jobs(2)  # keep them all `created`: quick and quiet
    ids = [(await canvas.start_import(2)).id for _ in range(5)]
    path = "/api/v1/accounts/2/sis_imports"

    first = await call(http, canvas, "GET", f"{path}?per_page=2", account_id=2)
    next_url = re.search(r'<([^>]+)>; rel="next"', first.headers["Link"])
    assert next_url is not None
    second = await call(http, canvas, "GET", next_url[1].removeprefix(canvas.url), account_id=2)
    last = await call(http, canvas, "GET", f"{path}?per_page=2&page=3", account_id=2)

    assert [i["id"] for i in first.body["sis_imports"]] == ids[::-1][:2]
    assert [i["id"] for i in second.body["sis_imports"]] == ids[::-1][2:4]
    assert [i["id"] for i in last.body["sis_imports"]] == ids[:1]
    assert 'rel="next"' not in last.headers["Link"]
    assert 'rel="prev"' in last.headers["Link"]
    assert 'rel="first"' in last.headers["Link"]
    assert 'rel="last"' not in first.headers["Link"]


async def test_list_filters_by_workflow_state(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    done = await canvas.start_import(2)
    await canvas.wait_for_state(done.id, "imported")
    canvas.stop_jobs(2)
    waiting = await canvas.start_import(2)

    answer = await call(
        http, canvas, "GET", "/api/v1/accounts/2/sis_imports?workflow_state[]=created", account_id=2
    )

    assert [i["id"] for i in answer.body["sis_imports"]] == [waiting.id]


async def test_a_raw_body_post_names_the_file_by_extension_and_is_recorded(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    answer = await call(
        http,
        canvas,
        "POST",
        "/api/v1/accounts/1/sis_imports.json?import_type=instructure_csv&extension=csv",
        headers={"Content-Type": "text/csv"},
        data=USERS_CSV,
    )

    (request,) = canvas.requests
    imp = canvas.imports[answer.body["id"]]
    assert answer.status == 200
    assert imp.upload_name == "sis_import.csv"
    assert imp.upload == USERS_CSV
    assert request.file_name == "sis_import.csv"
    assert request.file_bytes == USERS_CSV
    assert request.params == {"import_type": "instructure_csv", "extension": "csv"}
    assert "Authorization" not in request.headers
    assert request.status == 200


async def test_every_create_parameter_is_accepted_and_recorded(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    fields = {
        "import_type": "instructure_csv",
        "extension": "csv",
        "batch_mode": "true",
        "batch_mode_term_id": "1",
        "multi_term_batch_mode": "false",
        "batch_mode_enrollment_drop_status": "inactive",
        "skip_deletes": "true",
        "override_sis_stickiness": "true",
        "add_sis_stickiness": "true",
        "clear_sis_stickiness": "true",
        "update_sis_id_if_login_claimed": "true",
        "diffing_data_set_identifier": "nightly",
        "diffing_remaster_data_set": "true",
        "diffing_drop_status": "completed",
        "diffing_user_remove_status": "suspended",
        "change_threshold": "10",
        "diff_row_count_threshold": "500",
    }
    assert set(fields) == set(CREATE_PARAMS)

    answer = await post_import(http, canvas, fields=fields)

    assert answer.status == 200
    assert canvas.imports[answer.body["id"]].params == fields
    assert canvas.requests[0].params == fields
    assert answer.body["batch_mode"] is True
    assert answer.body["batch_mode_term_id"] == 1
    assert answer.body["skip_deletes"] is True
    assert answer.body["override_sis_stickiness"] is True
    assert answer.body["change_threshold"] == 10
    assert answer.body["diff_row_count_threshold"] == 500
    assert answer.body["diffing_drop_status"] == "completed"
    assert answer.body["batch_mode_enrollment_drop_status"] == "inactive"


async def test_a_multipart_post_without_attachment_is_400(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    form = aiohttp.FormData()
    form.add_field("import_type", "instructure_csv")
    form.add_field("batch_mode", "0", content_type="text/plain")  # forces multipart

    answer = await call(http, canvas, "POST", "/api/v1/accounts/1/sis_imports", data=form)

    assert answer.status == 400
    assert answer.body["error_message"] == "Missing attachment"


async def test_an_unknown_import_is_404(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    answer = await call(http, canvas, "GET", "/api/v1/accounts/1/sis_imports/12345")

    assert answer.status == 404
    assert answer.body == {"errors": [{"message": "The specified resource does not exist."}]}
    assert "X-Request-Context-Id" in answer.headers


async def test_an_import_of_another_account_is_404_through_this_one(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    imp = await canvas.start_import(2)

    answer = await call(http, canvas, "GET", f"/api/v1/accounts/1/sis_imports/{imp.id}")

    assert answer.status == 404


@pytest.mark.parametrize(
    "canvas_accounts", [(Account(id=1, name="No SIS", uuid="u-1", token="t-1", sis_imports_enabled=False),)]
)
async def test_sis_imports_disabled_is_403(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    answer = await post_import(http, canvas)

    assert answer.status == 403
    assert answer.body == {"errors": ["SIS imports are not enabled for this account"]}
