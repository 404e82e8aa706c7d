"""Canvas's URL, auth, id and date leniency, each against the Canvas behaviour it copies.

Every test names the section of docs/canvas.md ("What the simulated Canvas copies") it checks.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import aiohttp
import pytest

from consumer.sandbox.routing import canonical_path
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.sandbox_http import USERS_CSV, call, post_import

IMPORTS = "/api/v1/accounts/1/sis_imports"


@pytest.mark.parametrize(
    ("sent", "resolved"),
    [
        ("/api/v1/accounts/1/sis_imports/", "/api/v1/accounts/1/sis_imports"),
        ("/api/v1//accounts/1/sis_imports.json", "/api/v1/accounts/1/sis_imports"),
        ("/api/v1/accounts/1/sis_imports/7.json", "/api/v1/accounts/1/sis_imports/7"),
        ("//api/v1/accounts/self/", "/api/v1/accounts/self"),
        ("/", "/"),
    ],
)
def test_a_path_resolves_as_rails_normalises_it(sent: str, resolved: str) -> None:
    """URLs: runs of slashes collapse, a trailing slash goes, `.json` is the optional format."""
    assert canonical_path(sent) == resolved


async def test_a_post_with_a_trailing_slash_creates_the_import(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """URLs: the classic cron script POSTs to `.../sis_imports/?import_type=...` and Canvas takes it."""
    answer = await call(
        http, canvas, "POST", f"{IMPORTS}/?import_type=instructure_csv&extension=csv", data=USERS_CSV
    )

    assert answer.status == 200
    assert answer.body["id"] in canvas.imports


async def test_a_doubled_slash_and_json_suffix_create_the_import_and_keep_the_url_as_sent(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """URLs: `/api/v1//accounts/1/sis_imports.json` works; metadata.url is the request's own URL."""
    answer = await post_import(http, canvas, target="/1", query=".json")

    assert answer.status == 200
    await canvas.flush()
    (created, *_) = canvas.events_for(answer.body["id"])
    assert created.event["metadata"]["url"].endswith("/api/v1/accounts//1/sis_imports.json")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/accounts/1.json"),
        ("GET", "/api/v1/accounts/self.json"),
        ("GET", "/api/v1/accounts/1/terms.json"),
        ("GET", "/api/v1/accounts/1/terms/2.json"),
        ("GET", f"{IMPORTS}.json"),
        ("GET", f"{IMPORTS}/importing.json"),
        ("GET", f"{IMPORTS}/{{id}}.json"),
        ("GET", f"{IMPORTS}/{{id}}/errors.json"),
        ("GET", "/api/v1/accounts/1/sis_import_errors.json"),
        ("PUT", f"{IMPORTS}/abort_all_pending.json"),
        ("PUT", f"{IMPORTS}/{{id}}/abort.json"),
    ],
)
async def test_every_sis_imports_and_accounts_route_takes_a_json_suffix(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, method: str, path: str
) -> None:
    """URLs: every Rails route has an optional `(.:format)`."""
    canvas.stop_jobs(1)  # the import stays abortable
    created = await post_import(http, canvas)

    answer = await call(http, canvas, method, path.format(id=created.body["id"]))

    assert answer.status == 200


async def test_restore_states_takes_a_json_suffix(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """URLs: the format suffix on the one route that needs a finished import."""
    created = await post_import(http, canvas)
    await canvas.wait_for_state(created.body["id"], "imported")

    answer = await call(http, canvas, "PUT", f"{IMPORTS}/{created.body['id']}/restore_states.json")

    assert answer.status == 200


async def test_a_form_field_access_token_authenticates_a_multipart_post(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Authentication: Canvas reads `access_token` from the request params, the form body included."""
    answer = await post_import(http, canvas, None, target="1", fields={"access_token": canvas.tokens[1]})

    assert answer.status == 200
    imp = canvas.imports[answer.body["id"]]
    assert "access_token" not in imp.params
    await canvas.flush()
    assert canvas.tokens[1] not in canvas.events_for(imp.id)[0].body  # a form token never reaches the url


async def test_a_form_field_access_token_authenticates_a_urlencoded_put(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Authentication: the same for `application/x-www-form-urlencoded` bodies."""
    answer = await call(
        http,
        canvas,
        "PUT",
        f"{IMPORTS}/abort_all_pending",
        account_id=None,
        data={"access_token": canvas.tokens[1]},
    )

    assert answer.status == 200
    assert answer.body == {"aborted": True}


async def test_a_query_string_token_authenticates_and_leaks_into_the_events_url(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Authentication: `?access_token=` works, and Canvas copies the full URL into metadata.url."""
    answer = await post_import(http, canvas, None, target="1", query=f"?access_token={canvas.tokens[1]}")

    assert answer.status == 200
    await canvas.flush()
    assert canvas.tokens[1] in canvas.events_for(answer.body["id"])[0].event["metadata"]["url"]


@pytest.mark.parametrize("header", ["bearer {}", "BEARER {}", "Token {}", "{}"])
async def test_only_the_exact_bearer_scheme_carries_a_token(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, header: str
) -> None:
    """Authentication: `header_parts[0] == 'Bearer'`; anything else is no token at all."""
    headers = {"Authorization": header.format(canvas.tokens[1])}

    answer = await call(http, canvas, "GET", "/api/v1/accounts/self", account_id=None, headers=headers)

    assert answer.status == 401
    assert answer.body["errors"] == [{"message": "user authorization required"}]


async def test_the_header_wins_over_a_parameter(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    """Authentication: a `Bearer` header is used first; the parameter only when there is none."""
    path = f"/api/v1/accounts/self?access_token={canvas.tokens[2]}"

    answer = await call(http, canvas, "GET", path, account_id=1)

    assert answer.body["id"] == 1


@pytest.mark.parametrize("ref", ["sis_term_id:2026FA", "2", "21070000000000002"])
async def test_batch_mode_term_id_takes_any_reference_to_the_term(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, ref: str
) -> None:
    """Ids: `api_find` takes a local id, a global id and `sis_term_id:`; the answer shows the local id."""
    answer = await post_import(http, canvas, fields={"batch_mode": "1", "batch_mode_term_id": ref})

    assert answer.status == 200
    assert answer.body["batch_mode"] is True
    assert answer.body["batch_mode_term_id"] == 2


@pytest.mark.parametrize("ref", ["sis_term_id:1999XX", "5", "sis_account_id:2026FA"])
async def test_a_term_not_of_this_account_is_the_batch_mode_400(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, ref: str
) -> None:
    """Ids: an unknown SIS id, or another root account's term (5 is account 2's), is not found."""
    answer = await post_import(http, canvas, fields={"batch_mode": "1", "batch_mode_term_id": ref})

    assert answer.status == 400
    assert answer.body == {
        "message": "Batch mode specified, but the given batch_mode_term_id cannot be found."
    }
    assert canvas.imports == {}


async def test_terms_are_listed_with_their_sis_ids_and_found_by_them(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Ids: the Enrollment Terms API shows `sis_term_id` and takes `sis_term_id:` in the URL."""
    listed = await call(http, canvas, "GET", "/api/v1/accounts/1/terms")
    found = await call(http, canvas, "GET", f"/api/v1/accounts/1/terms/{quote('sis_term_id:2027SP')}")

    assert [(t["id"], t["sis_term_id"]) for t in listed.body["enrollment_terms"]] == [
        (1, None),
        (2, "2026FA"),
        (3, "2027SP"),
    ]
    assert found.body["id"] == 3


async def test_an_account_is_found_by_its_sis_account_id(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Ids: `:account_id` takes `sis_account_id:` wherever Canvas takes an account id."""
    answer = await call(http, canvas, "GET", "/api/v1/accounts/sis_account_id:MUSIC")

    assert answer.status == 200
    assert answer.body["id"] == 3


@pytest.mark.parametrize(
    ("created_since", "listed"),
    [
        ("2099-01-01", False),
        ("2000-01-01", True),
        ("2000-01-01T00:00:00", True),
        ("2099-01-01T00:00:00+02:00", False),
        ("not a date", True),
    ],
)
async def test_created_since_takes_iso_8601_with_or_without_time_and_offset(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, created_since: str, listed: bool
) -> None:
    """Dates: `CanvasTime.try_parse`: dates and local times parse; what cannot parse is ignored."""
    created = await post_import(http, canvas)

    answer = await call(http, canvas, "GET", f"{IMPORTS}?created_since={quote(created_since)}")

    assert ([i["id"] for i in answer.body["sis_imports"]] == [created.body["id"]]) is listed


async def test_a_time_without_offset_is_in_the_accounts_time_zone(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Dates: no offset means `Time.zone`, the account's zone (America/Chicago, UTC-6 or -5), not UTC."""
    await post_import(http, canvas)
    # Read as UTC this is four hours ago, before the import; read in Chicago it is still to come.
    since = (datetime.now(UTC) - timedelta(hours=4)).replace(tzinfo=None).isoformat(timespec="seconds")

    answer = await call(http, canvas, "GET", f"{IMPORTS}?created_since={since}")

    assert answer.body["sis_imports"] == []
