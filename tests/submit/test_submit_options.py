"""`submit()` and `sis-consumer submit`: what reaches Canvas's POST, and what the store keeps."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.config import Secret
from consumer.core.submission import Submission, SubmissionStatus
from consumer.core.tracker import Origin, State
from consumer.errors import CanvasBadRequest
from consumer.ports import SystemClock
from consumer.sandbox.middleware import RequestRecord
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.submitting import ImportOptions, submit
from tests.support.cli import cli
from tests.support.sis_files import ACCOUNT_ID, canvas_env, event_observation, sha256, sis_file


@dataclass(frozen=True, slots=True)
class Family:
    options: ImportOptions
    flags: tuple[str, ...]
    sent: dict[str, str]
    """The parameters Canvas must receive (besides `extension`)."""


FAMILIES = {
    "batch-mode-and-term": Family(
        ImportOptions(batch_mode=True, batch_mode_term_id="2"),
        ("--batch-mode", "--batch-mode-term-id", "2"),
        {"batch_mode": "true", "batch_mode_term_id": "2"},
    ),
    "multi-term-batch-mode-and-change-threshold": Family(
        ImportOptions(multi_term_batch_mode=True, change_threshold=10),
        ("--multi-term-batch-mode", "--change-threshold", "10"),
        {"multi_term_batch_mode": "true", "change_threshold": "10"},
    ),
    "diffing": Family(
        ImportOptions(
            diffing_data_set_identifier="users-nightly",
            diffing_remaster_data_set=True,
            diffing_drop_status="inactive",
            diffing_user_remove_status="suspended",
            diff_row_count_threshold=500,
        ),
        (
            "--diffing-data-set-identifier",
            "users-nightly",
            "--diffing-remaster-data-set",
            "--diffing-drop-status",
            "inactive",
            "--diffing-user-remove-status",
            "suspended",
            "--diff-row-count-threshold",
            "500",
        ),
        {
            "diffing_data_set_identifier": "users-nightly",
            "diffing_remaster_data_set": "true",
            "diffing_drop_status": "inactive",
            "diffing_user_remove_status": "suspended",
            "diff_row_count_threshold": "500",
        },
    ),
    "stickiness": Family(
        ImportOptions(
            override_sis_stickiness=True,
            add_sis_stickiness=True,
            clear_sis_stickiness=True,
            update_sis_id_if_login_claimed=True,
        ),
        (
            "--override-sis-stickiness",
            "--add-sis-stickiness",
            "--clear-sis-stickiness",
            "--update-sis-id-if-login-claimed",
        ),
        {
            "override_sis_stickiness": "true",
            "add_sis_stickiness": "true",
            "clear_sis_stickiness": "true",
            "update_sis_id_if_login_claimed": "true",
        },
    ),
    "skip-deletes": Family(
        ImportOptions(batch_mode=True, batch_mode_term_id="1", skip_deletes=True),
        ("--batch-mode", "--batch-mode-term-id", "1", "--skip-deletes"),
        {"batch_mode": "true", "batch_mode_term_id": "1", "skip_deletes": "true"},
    ),
    "drop-status": Family(
        ImportOptions(batch_mode=True, batch_mode_term_id="3", batch_mode_enrollment_drop_status="completed"),
        ("--batch-mode", "--batch-mode-term-id", "3", "--batch-mode-enrollment-drop-status", "completed"),
        {"batch_mode": "true", "batch_mode_term_id": "3", "batch_mode_enrollment_drop_status": "completed"},
    ),
    "import-type": Family(
        ImportOptions(import_type="instructure_csv"),
        ("--import-type", "instructure_csv"),
        {"import_type": "instructure_csv"},
    ),
}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(tmp_path / "state.db") as db:
        yield db


@pytest.fixture
async def client(canvas: SimulatedCanvas) -> AsyncIterator[CanvasClient]:
    async with open_canvas(canvas.url, Secret(canvas.tokens[ACCOUNT_ID]), backoff_base=0.01) as c:
        yield c


def the_post(canvas: SimulatedCanvas) -> RequestRecord:
    [post] = [r for r in canvas.requests if r.method == "POST"]
    return post


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
async def test_library_options_reach_the_post(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path, family: Family
) -> None:
    path = sis_file(tmp_path, "users.csv")

    await submit(path, family.options, canvas=client, store=store, clock=SystemClock())

    post = the_post(canvas)
    assert post.status == 200
    assert post.params == {**family.sent, "extension": "csv"}


@pytest.mark.parametrize("family", FAMILIES.values(), ids=FAMILIES.keys())
async def test_cli_options_reach_the_post(canvas: SimulatedCanvas, tmp_path: Path, family: Family) -> None:
    path = sis_file(tmp_path, "users.csv")

    run = await cli(
        "submit", str(path), *family.flags, env=canvas_env(canvas, tmp_path / "s.db"), cwd=tmp_path
    )

    assert run.returncode == 0, run.output
    post = canvas.requests[-1]
    assert (post.method, post.status) == ("POST", 200)
    assert post.params == {**family.sent, "extension": "csv"}


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
@pytest.mark.parametrize(("name", "extension"), [("users.zip", "zip"), ("users.csv", "csv")])
async def test_the_file_and_its_inferred_extension_reach_the_post(
    canvas: SimulatedCanvas,
    client: CanvasClient,
    store: SqliteStore,
    tmp_path: Path,
    name: str,
    extension: str,
    raw: bool,
) -> None:
    path = sis_file(tmp_path, name)

    await submit(path, ImportOptions(), canvas=client, store=store, clock=SystemClock(), raw=raw)

    post = the_post(canvas)
    assert post.status == 200
    assert post.file_bytes == path.read_bytes()
    assert post.params["extension"] == extension
    if raw:
        assert post.query["extension"] == extension  # a raw body has only the query string for it
        assert post.file_name == f"sis_import.{extension}"
    else:
        assert post.headers["Content-Type"].startswith("multipart/form-data")
        assert post.file_name == name


async def test_cli_raw_upload_sends_the_file_as_the_body(canvas: SimulatedCanvas, tmp_path: Path) -> None:
    path = sis_file(tmp_path, "nightly.zip")

    run = await cli(
        "submit", str(path), "--raw", "--json", env=canvas_env(canvas, tmp_path / "s.db"), cwd=tmp_path
    )

    assert run.returncode == 0, run.output
    post = canvas.requests[-1]
    assert list(canvas.imports) == [int(json.loads(run.stdout)["id"])]  # it prints the SisImport
    assert post.file_bytes == path.read_bytes()
    assert post.query == {"extension": "zip"}
    assert post.headers["Content-Type"] == "application/zip"


async def test_the_submission_row_records_the_file_the_options_and_canvas_answer(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path
) -> None:
    path = sis_file(tmp_path, "nightly.zip")
    options = ImportOptions(batch_mode=True, batch_mode_term_id="2")
    before = datetime.now(UTC)

    submitted = await submit(path, options, canvas=client, store=store, clock=SystemClock())

    after = datetime.now(UTC)
    row = await store.submission(submitted.submission_id)
    assert row is not None
    post = the_post(canvas)
    assert (row.file_name, row.size, row.sha256) == ("nightly.zip", path.stat().st_size, sha256(path))
    assert dict(row.options) == {"batch_mode": "true", "batch_mode_term_id": "2", "extension": "zip"}
    assert before <= row.submitted_at <= after
    assert (row.status, row.http_status, row.error) == (SubmissionStatus.ACCEPTED, 200, None)
    assert row.sis_batch_id == submitted.sis_batch_id
    assert submitted.sis_batch_id in canvas.imports
    assert row.request_id == post.request_id  # X-Request-Context-Id of the POST
    assert (row.account, row.account_id) == (canvas.account(ACCOUNT_ID).uuid, str(ACCOUNT_ID))


async def rejected_post(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path
) -> tuple[Submission, RequestRecord]:
    """`multi_term_batch_mode` without `change_threshold`: 400, after the batch was saved."""
    path = sis_file(tmp_path, "users.csv")
    with pytest.raises(CanvasBadRequest) as refused:
        await submit(
            path, ImportOptions(multi_term_batch_mode=True), canvas=client, store=store, clock=SystemClock()
        )
    assert refused.value.status == 400
    row = await store.submission(1)
    assert row is not None
    return row, the_post(canvas)


async def test_a_400_is_recorded_as_rejected_with_canvas_message_and_request_id(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path
) -> None:
    row, post = await rejected_post(canvas, client, store, tmp_path)

    assert (row.status, row.http_status) == (SubmissionStatus.REJECTED, 400)
    assert row.error is not None
    assert "change_threshold is required to use multi term_batch mode." in row.error
    assert row.request_id == post.request_id
    [orphan] = canvas.imports.values()  # Canvas saved the batch before it refused
    assert (orphan.workflow_state, orphan.request_id) == ("initializing", post.request_id)


async def test_the_orphan_event_of_a_rejected_post_joins_its_submission_by_request_id(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path
) -> None:
    row, post = await rejected_post(canvas, client, store, tmp_path)
    [orphan] = canvas.imports.values()
    await canvas.flush()
    [created] = canvas.events_for(orphan.id)
    obs = event_observation(created.body)
    assert obs.request_id == post.request_id

    applied = await store.apply(obs, datetime.now(UTC))

    assert (applied.record.state, applied.record.origin) == (State.INITIALIZING, Origin.SUBMITTED)
    assert applied.record.submitted_at == row.submitted_at
    joined = await store.submission(1)
    assert joined is not None
    assert joined.sis_batch_id == orphan.id
    assert (await store.submissions()).get((obs.account, orphan.id)) == joined


async def test_the_orphan_event_applied_before_the_400_is_recorded_still_joins(
    canvas: SimulatedCanvas, client: CanvasClient, store: SqliteStore, tmp_path: Path
) -> None:
    """The daemon may read the orphan's event before `submit` writes the 400 down."""
    path = sis_file(tmp_path, "users.csv")
    submission_id = await store.record_submission(
        Submission(
            canvas_url=client.base_url,
            account_ref="self",
            account=canvas.account(ACCOUNT_ID).uuid,
            account_id=str(ACCOUNT_ID),
            file_name=path.name,
            size=path.stat().st_size,
            sha256=sha256(path),
            submitted_at=datetime.now(UTC),
        )
    )
    with pytest.raises(CanvasBadRequest) as refused:
        await client.create_sis_import(
            str(ACCOUNT_ID), path.read_bytes(), filename=path.name, params={"multi_term_batch_mode": "true"}
        )
    [orphan] = canvas.imports.values()
    await canvas.flush()
    [created] = canvas.events_for(orphan.id)
    early = await store.apply(event_observation(created.body), datetime.now(UTC))
    assert early.record.origin is Origin.EXTERNAL  # nothing to join yet: the answer is not written

    await store.answer_submission(
        submission_id,
        status=SubmissionStatus.REJECTED,
        now=datetime.now(UTC),
        http_status=400,
        error=str(refused.value),
        request_id=refused.value.request_id,
    )

    record = await store.record(canvas.account(ACCOUNT_ID).uuid, orphan.id)
    assert record is not None
    assert record.origin is Origin.SUBMITTED
    joined = await store.submission(submission_id)
    assert joined is not None
    assert joined.sis_batch_id == orphan.id
