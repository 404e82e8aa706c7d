"""Clients this project did not write, as users run them against Canvas, ported to test helpers.

Each keeps the habits that made the simulated Canvas stricter than Canvas: the classic cron script
(requests: a trailing slash, a raw body without Content-Type, a Bearer header, polling `ended_at`),
the canvas-contrib style client (a doubled slash, the token as a form field, `.json` status URLs),
ucfopen's canvasapi, and the curl forms of the SIS Imports API documentation. Polling waits through
`wait_until` (a deadline), at the pace the test chooses instead of the scripts' minute.
"""

from __future__ import annotations

import functools
import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from canvasapi import Canvas
from canvasapi.account import Account
from canvasapi.exceptions import BadRequest, ResourceDoesNotExist
from canvasapi.sis_import import SisImport

from tests.support.waiting import wait_until

T = TypeVar("T")
FINISHED = {"imported", "imported_with_messages", "failed", "failed_with_messages", "aborted"}
POLL = 0.2
DEADLINE = 60.0


def poll(check: Callable[[], T | None], what: str) -> T:
    """What the scripts' polling loops do, with a deadline instead of a count of minutes."""
    found = wait_until(check, timeout=DEADLINE, interval=POLL, what=what)
    assert found is not None
    return found


@dataclass(frozen=True, slots=True)
class Target:
    canvas_url: str
    account_id: str
    token: str


def cron_script(target: Target, zip_path: Path) -> dict[str, Any]:
    """canvas_sis_import.py: POST the zip as the raw body to `.../sis_imports/`, poll until `ended_at`."""
    base_url = f"{target.canvas_url}/api/v1/accounts/"
    header = {"Authorization": f"Bearer {target.token}"}
    params = {"import_type": "instructure_csv", "extension": "zip"}
    initial = requests.post(
        base_url + target.account_id + "/sis_imports/",
        headers=header,
        params=params,
        data=zip_path.read_bytes(),
        timeout=10,
    )
    job_id = str(json.loads(initial.text)["id"])  # the script's KeyError when Canvas says no

    def ended() -> dict[str, Any] | None:
        progress = requests.get(
            base_url + target.account_id + "/sis_imports/" + job_id, headers=header, timeout=10
        )
        body: dict[str, Any] = json.loads(progress.text)
        return body if body["ended_at"] else None

    return poll(ended, f"ended_at of import {job_id}")


def contrib_client(target: Target, csv_path: Path) -> dict[str, Any]:
    """canvas-contrib style: `/api/v1//accounts/:id/sis_imports.json`, the token as a form field."""
    base = f"{target.canvas_url}/api/v1/"
    with csv_path.open("rb") as attachment:
        created = requests.post(
            f"{base}/accounts/{target.account_id}/sis_imports.json",
            data={"access_token": target.token, "import_type": "instructure_csv", "extension": "csv"},
            files={"attachment": (csv_path.name, attachment, "text/csv")},
            timeout=10,
        )
    created.raise_for_status()
    import_id = created.json()["id"]

    def status() -> dict[str, Any] | None:
        answer = requests.get(
            f"{base}/accounts/{target.account_id}/sis_imports/{import_id}.json",
            params={"access_token": target.token},
            timeout=10,
        )
        body: dict[str, Any] = answer.json()
        return body if body["workflow_state"] in FINISHED else None

    return poll(status, f"import {import_id} to finish")


@dataclass(frozen=True, slots=True)
class CanvasapiRun:
    polled: SisImport
    """The batch-mode import, polled to its end."""
    aborted: SisImport
    listed_ids: list[int]
    refused_unknown_term: bool
    refused_abort_of_finished: bool


def canvasapi_client(target: Target, zip_path: Path, term_sis_id: str) -> CanvasapiRun:
    """canvasapi: create in batch mode by `sis_term_id:`, poll, abort, list, and its error answers."""
    canvas = Canvas(target.canvas_url, target.token)
    account: Account = canvas.get_account(int(target.account_id))
    try:
        account.create_sis_import(str(zip_path), batch_mode=True, batch_mode_term_id="sis_term_id:NOPE")
        refused_unknown_term = False
    except BadRequest:
        refused_unknown_term = True
    created = account.create_sis_import(
        str(zip_path), batch_mode=True, batch_mode_term_id=f"sis_term_id:{term_sis_id}"
    )

    def finished() -> SisImport | None:
        polled: SisImport = account.get_sis_import(created.id)
        return polled if polled.workflow_state in FINISHED else None

    polled = poll(finished, f"canvasapi import {created.id}")
    try:
        polled.abort()
        refused_abort_of_finished = False
    except ResourceDoesNotExist:
        refused_abort_of_finished = True
    doomed = account.create_sis_import(str(zip_path))
    aborted: SisImport = doomed.abort()
    listed = [imp.id for imp in account.get_sis_imports(per_page=1)]  # one per page: follows Link
    return CanvasapiRun(polled, aborted, listed, refused_unknown_term, refused_abort_of_finished)


def curl(*args: str) -> str:
    done = subprocess.run(
        ["curl", "--silent", "--show-error", "--fail", *args], capture_output=True, check=True
    )
    return done.stdout.decode()


def curl_imports(target: Target, csv_path: Path, zip_path: Path) -> list[dict[str, Any]]:
    """The documentation's forms: `-F attachment=@file`, then `--data-binary` with `application/zip`."""
    auth = f"Authorization: Bearer {target.token}"
    imports = f"{target.canvas_url}/api/v1/accounts/{target.account_id}/sis_imports.json"
    url = f"{imports}?import_type=instructure_csv"
    multipart = json.loads(curl("-F", f"attachment=@{csv_path}", "-H", auth, url))
    raw = json.loads(
        curl("-H", "Content-Type: application/zip", "--data-binary", f"@{zip_path}", "-H", auth, url)
    )

    def status(import_id: int) -> dict[str, Any] | None:
        show = f"{target.canvas_url}/api/v1/accounts/{target.account_id}/sis_imports/{import_id}"
        body: dict[str, Any] = json.loads(curl(show, "-H", auth))
        return body if body["workflow_state"] in FINISHED else None

    return [
        poll(functools.partial(status, imp["id"]), f"curl import {imp['id']}") for imp in (multipart, raw)
    ]


def curl_restore(target: Target, import_id: int) -> dict[str, Any]:
    """`curl -X PUT .../restore_states -H 'Authorization: Bearer <token>'`: a Progress."""
    url = f"{target.canvas_url}/api/v1/accounts/{target.account_id}/sis_imports/{import_id}/restore_states"
    progress: dict[str, Any] = json.loads(
        curl("-X", "PUT", url, "-H", f"Authorization: Bearer {target.token}")
    )
    return progress
