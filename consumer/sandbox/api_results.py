"""What a SIS import leaves behind, over HTTP: its errors, its files, the progress of a restore.

- The SIS Import Errors API (`SisImportErrorsApiController#index`): per import at
  `.../sis_imports/:id/errors`, per account at `.../sis_import_errors`; newest first, paged with a
  counted `Link` header; `failure=true` keeps the errors that fail an import.
- `/files/:id/download`: the upload's extracted CSVs and the errors CSV, for an admin's token or
  for the `verifier` of the file's URL (how a browser or `curl -L` downloads `errors_attachment.url`).
- `GET /api/v1/progress/:id`: the Progress that `restore_states` answered with.
See docs/canvas.md, "Errors of an import" and "Files of an import".
"""

from __future__ import annotations

import hmac

from aiohttp import web

from consumer.sandbox.lookup import backend, base_url, paginate, sis_account, sis_import
from consumer.sandbox.middleware import NOT_FOUND, UNAUTHORIZED, json_response, token_account
from consumer.sandbox.params import to_bool
from consumer.sandbox.render import progress_json
from consumer.sandbox.sis_errors import SisError, error_json, newest_first


async def list_errors(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    engine = backend(request).engine
    if "import_id" in request.match_info:
        found = sis_import(request)
        if isinstance(found, web.Response):
            return found
        errors: list[SisError] = list(found[1].errors)
    else:
        errors = [e for imp in engine.imports.values() if imp.account_id == owner.id for e in imp.errors]
    if to_bool(request.query.get("failure")):
        errors = [e for e in errors if e.failure]
    shown, links = paginate(request, newest_first(errors), with_last=True)
    response = json_response(request, {"sis_import_errors": [error_json(e) for e in shown]})
    response.headers["Link"] = links
    return response


async def download_file(request: web.Request) -> web.StreamResponse:
    raw = request.match_info["file_id"]
    stored = backend(request).engine.files.get(int(raw)) if raw.isdigit() else None
    if stored is None:
        return json_response(request, NOT_FOUND, 404)
    owner = token_account()
    verified = hmac.compare_digest(request.query.get("verifier", ""), stored.verifier)
    if owner is None and not verified:
        return json_response(request, UNAUTHORIZED, 401)
    if owner is not None and owner.id != stored.account_id and not verified:
        return json_response(request, UNAUTHORIZED, 401)
    name = stored.attachment.filename
    return web.Response(
        body=stored.data,
        content_type=stored.attachment.content_type,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


async def show_progress(request: web.Request) -> web.Response:
    raw = request.match_info["progress_id"]
    engine = backend(request).engine
    progress = engine.progresses.get(int(raw)) if raw.isdigit() else None
    owner = token_account()
    if progress is None or owner is None or engine.imports[progress.context_id].account_id != owner.id:
        return json_response(request, NOT_FOUND, 404)
    return json_response(request, progress_json(progress, base_url(request)))


def add_result_routes(app: web.Application) -> None:
    base = "/api/v1/accounts/{account_id}"
    app.router.add_get(base + "/sis_imports/{import_id}/errors", list_errors)
    app.router.add_get(base + "/sis_import_errors", list_errors)
    app.router.add_get("/api/v1/progress/{progress_id}", show_progress)
    app.router.add_get("/files/{file_id}/download", download_file)
