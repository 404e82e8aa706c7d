"""A large SIS file over a slow uplink is submitted, not recorded as failed: the request timeout
bounds waiting for Canvas, not the upload itself."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from consumer.adapters.canvas import open_canvas
from consumer.adapters.store_sqlite import open_sqlite
from consumer.config import Secret
from consumer.core.submission import SubmissionStatus
from consumer.ports import SystemClock
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.submitting import ImportOptions, submit
from tests.support.cli import cli
from tests.support.sis_files import ACCOUNT_ID, USERS_CSV, canvas_env, sis_file
from tests.support.slow_link import slow_uplink

SIZE = 2 * 1024 * 1024
RATE = 1024 * 1024
"""Bytes per second: the upload takes about 2 s, four times the request timeout below."""
REQUEST_SECONDS = 0.5


async def test_an_upload_slower_than_the_request_timeout_is_accepted_and_recorded(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    path = tmp_path / "nightly.csv"
    # Random bytes after the CSV: a file that does not compress, as a real zip does not.
    path.write_bytes(USERS_CSV + os.urandom(SIZE).hex().encode()[:SIZE])
    port = urlsplit(canvas.url).port
    assert port is not None

    async with (
        slow_uplink(port, RATE) as url,
        open_canvas(url, Secret(canvas.tokens[ACCOUNT_ID]), request_seconds=REQUEST_SECONDS) as client,
        open_sqlite(tmp_path / "s.db") as store,
    ):
        submitted = await submit(path, ImportOptions(), canvas=client, store=store, clock=SystemClock())
        recorded = await store.submission(submitted.submission_id)

    assert recorded is not None
    assert recorded.status is SubmissionStatus.ACCEPTED
    assert recorded.sis_batch_id == submitted.sis_batch_id
    assert [imp.id for imp in canvas.imports.values()] == [submitted.sis_batch_id]


async def test_a_post_canvas_did_not_answer_warns_that_the_import_may_exist(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    canvas.faults.start("error_page", method="POST")

    run = await cli(
        "submit",
        str(sis_file(tmp_path, "users.csv")),
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 4, run.output
    assert "may have created the import" in run.stderr
    assert "sis-consumer imports" in run.stderr
