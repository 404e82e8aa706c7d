"""What an import leaves behind, as Canvas shows it: errors, files, restores (docs/canvas.md)."""

from __future__ import annotations

import csv
import io
import re
import zipfile

import aiohttp
import pytest

from consumer.sandbox.knobs import Knobs, Outcome
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.sandbox_http import COURSES_CSV, USERS_CSV, call, post_import

IMPORTS = "/api/v1/accounts/1/sis_imports"


def _zip(**files: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in files.items():
            archive.writestr(name.replace("__", "/"), data)
    return out.getvalue()


async def _finished_with(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, outcome: Outcome, messages: int
) -> int:
    canvas.plan(1, outcome, messages=messages, errors_attachment_seconds=0)
    created = await post_import(http, canvas)
    imp = await canvas.wait_for_state(created.body["id"], outcome)
    await canvas.wait_for_events(lambda _: imp.errors_attachment is not None)
    return imp.id


async def test_the_errors_api_lists_every_warning_of_an_import_newest_first_and_paged(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Errors of an import: `GET .../sis_imports/:id/errors`, 30 rows where the import lists 24."""
    import_id = await _finished_with(canvas, http, "imported_with_messages", 30)

    first = await call(http, canvas, "GET", f"{IMPORTS}/{import_id}/errors?per_page=25")
    last = await call(http, canvas, "GET", f"{IMPORTS}/{import_id}/errors?per_page=25&page=2")

    rows = first.body["sis_import_errors"] + last.body["sis_import_errors"]
    assert len(rows) == 30
    assert len(canvas.imports[import_id].processing_warnings) == 25  # 24 and "and 6 more"
    assert set(rows[0]) == {"sis_import_id", "file", "message", "row_info", "row"}
    assert {r["sis_import_id"] for r in rows} == {import_id}
    assert rows[0]["message"].startswith("user sis-user-29 ")  # the newest first
    assert 'rel="last"' in first.headers["Link"]
    assert 'rel="next"' in first.headers["Link"]


async def test_the_account_errors_api_lists_all_imports_and_filters_failures(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Errors of an import: `GET .../sis_import_errors`; `failure=true` keeps what fails an import."""
    warned = await _finished_with(canvas, http, "imported_with_messages", 2)
    failed = await _finished_with(canvas, http, "failed_with_messages", 3)

    everything = await call(http, canvas, "GET", "/api/v1/accounts/1/sis_import_errors")
    failures = await call(http, canvas, "GET", "/api/v1/accounts/1/sis_import_errors?failure=true")
    elsewhere = await call(http, canvas, "GET", "/api/v1/accounts/2/sis_import_errors", account_id=2)

    assert [r["sis_import_id"] for r in everything.body["sis_import_errors"]] == [failed] * 3 + [warned] * 2
    assert [r["sis_import_id"] for r in failures.body["sis_import_errors"]] == [failed] * 3
    assert elsewhere.body["sis_import_errors"] == []


async def test_the_errors_attachment_downloads_as_canvass_csv_by_its_url_alone(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Files of an import: `errors_attachment.url` carries a verifier; the CSV holds every row."""
    import_id = await _finished_with(canvas, http, "failed_with_messages", 30)
    shown = await call(http, canvas, "GET", f"{IMPORTS}/{import_id}")

    async with http.get(shown.body["errors_attachment"]["url"]) as response:  # no token
        body = await response.read()

    rows = list(csv.reader(io.StringIO(body.decode())))
    assert response.status == 200
    assert rows[0] == ["sis_import_id", "file", "message", "row"]
    assert len(rows) == 31
    assert rows[1][:2] == [str(import_id), "users.csv"]
    assert shown.body["errors_attachment"]["size"] == len(body)


async def test_a_file_without_token_or_right_verifier_is_401(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Files of an import: the verifier is what opens a file to someone without a token."""
    import_id = await _finished_with(canvas, http, "failed_with_messages", 1)
    url = (await call(http, canvas, "GET", f"{IMPORTS}/{import_id}")).body["errors_attachment"]["url"]
    wrong = re.sub(r"verifier=[^&]+", "verifier=guess", url)

    async with http.get(wrong) as guessed:
        assert guessed.status == 401
    by_token = await call(http, canvas, "GET", wrong.removeprefix(canvas.url))
    by_other = await call(http, canvas, "GET", wrong.removeprefix(canvas.url), account_id=2)
    assert by_token.status == 200
    assert by_other.status == 401


async def test_csv_attachments_are_the_extracted_csvs_once_the_job_runs(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Files of an import: a zip's CSVs (not the zip, not `__MACOSX/`), from `importing` on."""
    canvas.stop_jobs(1)
    data = _zip(**{"users.csv": USERS_CSV, "more__courses.csv": COURSES_CSV, "__MACOSX__._users.csv": b"x"})
    created = await post_import(http, canvas, data=data, file_name="nightly.zip")
    assert "csv_attachments" not in created.body

    canvas.start_jobs(1)
    await canvas.wait_for_state(created.body["id"], "imported")
    shown = await call(http, canvas, "GET", f"{IMPORTS}/{created.body['id']}")

    attachments = shown.body["csv_attachments"]
    assert [a["display_name"] for a in attachments] == ["users.csv", "courses.csv"]
    assert shown.body["data"]["downloadable_attachment_ids"] == [a["id"] for a in attachments]
    async with http.get(attachments[1]["url"]) as response:
        assert await response.read() == COURSES_CSV


async def test_a_csv_upload_is_its_own_csv_attachment(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Files of an import: a single CSV is not copied; the upload itself is listed."""
    created = await post_import(http, canvas, file_name="people.csv")
    imp = await canvas.wait_for_state(created.body["id"], "imported")

    assert imp.csv_attachments == [imp.upload_attachment]


async def test_restore_states_answers_a_progress_then_publishes_restoring_and_restored(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Restores: `restore_states_later` queues a job; each of its states is saved with an event."""
    created = await post_import(http, canvas)
    import_id = created.body["id"]
    await canvas.wait_for_state(import_id, "imported")

    answer = await call(http, canvas, "PUT", f"{IMPORTS}/{import_id}/restore_states")
    await canvas.wait_for_state(import_id, "restored")
    progress = await call(http, canvas, "GET", answer.body["url"].removeprefix(canvas.url))

    assert answer.body["context_type"] == "SisBatch"
    assert answer.body["context_id"] == import_id
    assert answer.body["tag"] == "sis_batch_state_restore"
    assert answer.body["workflow_state"] in {"queued", "running"}
    assert progress.body["workflow_state"] == "completed"
    assert progress.body["completion"] == 100
    await canvas.flush()
    restore_events = [d.event for d in canvas.events_for(import_id)][-2:]
    assert [e["body"]["workflow_state"] for e in restore_events] == ["restoring", "restored"]
    assert {e["metadata"]["job_tag"] for e in restore_events} == {"SisBatch#restore_states_for_batch"}


@pytest.mark.parametrize("flag", ["batch_mode", "undelete_only", "unconclude_only"])
async def test_a_restore_limited_by_a_flag_ends_partially_restored(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession, flag: str
) -> None:
    """Restores: any of the three flags makes the final state `partially_restored`."""
    created = await post_import(http, canvas)
    await canvas.wait_for_state(created.body["id"], "imported")

    await call(http, canvas, "PUT", f"{IMPORTS}/{created.body['id']}/restore_states", data={flag: "true"})

    await canvas.wait_for_state(created.body["id"], "partially_restored")


async def test_undelete_only_with_unconclude_only_is_400(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Restores: Canvas refuses the two together with a bare JSON string."""
    created = await post_import(http, canvas)
    await canvas.wait_for_state(created.body["id"], "imported")

    answer = await call(
        http,
        canvas,
        "PUT",
        f"{IMPORTS}/{created.body['id']}/restore_states?undelete_only=1&unconclude_only=1",
    )

    assert answer.status == 400
    assert answer.body == "cannot set both undelete_only and unconclude_only"


async def test_an_unfinished_import_is_not_restored(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    """Restores: the sandbox's one refusal Canvas lacks (docs/canvas.md says why)."""
    canvas.stop_jobs(1)
    created = await post_import(http, canvas)

    answer = await call(http, canvas, "PUT", f"{IMPORTS}/{created.body['id']}/restore_states")

    assert answer.status == 400
    assert canvas.imports[created.body["id"]].workflow_state == "created"


@pytest.mark.parametrize("knobs", [Knobs(fates=("failed", "stuck", "imported"))])
async def test_scripted_fates_are_taken_in_turn(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    """`Knobs.fates` (`sis-consumer sandbox --fates`): each new import takes the next fate."""
    first = await post_import(http, canvas, 2, target="2")
    second = await post_import(http, canvas, 1)

    await canvas.wait_for_state(first.body["id"], "failed")
    stuck = await canvas.wait_for_state(second.body["id"], "importing")
    assert stuck.plan is not None
    assert stuck.plan.stuck
