"""The HTTP face of the simulated Canvas: the Accounts, Enrollment Terms and SIS Imports APIs.

Handlers only translate HTTP to `ImportEngine` calls and rows to JSON; the rules live in
`lifecycle`, `params` and `render`, the URL lookups in `lookup`, what an import leaves behind
(errors, files, restore progress) in `api_results`. Every route also answers with a trailing or
doubled slash and a `.json` suffix (`routing`), as Canvas's do.
"""

from __future__ import annotations

import warnings

from aiohttp import web

from consumer.sandbox.accounts import Account
from consumer.sandbox.api_results import add_result_routes
from consumer.sandbox.lifecycle import Upload
from consumer.sandbox.live_events import RequestContext
from consumer.sandbox.lookup import (
    BACKEND,
    Backend,
    account,
    backend,
    base_url,
    import_of,
    paginate,
    request_params,
    sis_account,
    sis_import,
    time_zone,
)
from consumer.sandbox.middleware import (
    GATEKEEPER,
    NOT_FOUND,
    Gatekeeper,
    canvas_middleware,
    json_response,
    record,
)
from consumer.sandbox.model import NOT_COMPLETED, RUNNING, SisImport
from consumer.sandbox.params import ApiError, parse_canvas_time, raw_upload_name, to_bool
from consumer.sandbox.render import account_json, progress_json, sis_import_json, term_json
from consumer.sandbox.routing import CanvasRouter

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
WORKFLOW_STATES = frozenset(
    {
        "initializing",
        "created",
        "importing",
        "cleanup_batch",
        "imported",
        "imported_with_messages",
        "aborted",
        "failed",
        "failed_with_messages",
        "restoring",
        "partially_restored",
        "restored",
    }
)


def _render(request: web.Request, imp: SisImport) -> dict[str, object]:
    return sis_import_json(imp, base_url(request))


def request_context(request: web.Request, owner: Account) -> RequestContext:
    url = request.url
    return RequestContext(
        request_id=record().request_id,
        url=str(url),
        http_method=request.method,
        hostname=url.host or "localhost",
        user_agent=request.headers.get("User-Agent"),
        client_ip=request.remote,
        referrer=request.headers.get("Referer"),
        session_id=None,  # token-authenticated API requests have no session
        context=owner,
        user=owner.admin,
    )


async def get_account(request: web.Request) -> web.Response:
    found = account(request)
    if isinstance(found, web.Response):
        return found
    return json_response(request, account_json(found))


async def list_terms(request: web.Request) -> web.Response:
    """`GET .../terms`: the root account's terms (one page; a sandbox account has a few)."""
    found = account(request)
    if isinstance(found, web.Response):
        return found
    return json_response(request, {"enrollment_terms": [term_json(t) for t in found.terms]})


async def show_term(request: web.Request) -> web.Response:
    found = account(request)
    if isinstance(found, web.Response):
        return found
    term = found.term(request.match_info["term_id"])
    if term is None:
        return json_response(request, NOT_FOUND, 404)
    return json_response(request, term_json(term))


async def _read_upload(request: web.Request) -> tuple[dict[str, str], Upload] | ApiError:
    params = {k: v for k, v in request.query.items() if k != "access_token"}
    if request.content_type == "multipart/form-data":
        form = await request.post()
        attachment = None
        for key, value in form.items():
            if key == "attachment":
                attachment = value
            elif isinstance(value, str) and key != "access_token":
                params[key] = value
        if attachment is None:
            return ApiError(400, {"error": True, "error_message": "Missing attachment"})
        if isinstance(attachment, web.FileField):
            data = attachment.file.read()
            return params, Upload(attachment.filename, data, attachment.content_type)
        text = attachment if isinstance(attachment, str) else bytes(attachment).decode()
        return params, Upload("sis_import.csv", text.encode(), "text/csv")
    name = raw_upload_name(params.get("extension"), request.headers.get("Content-Type"))
    if isinstance(name, ApiError):
        return name
    return params, Upload(name, await request.read(), request.content_type)


async def create_import(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    read = await _read_upload(request)
    if isinstance(read, ApiError):
        return json_response(request, read.body, read.status)
    params, upload = read
    rec = record()
    rec.params, rec.file_name, rec.file_bytes = dict(params), upload.name, upload.data
    result = await backend(request).engine.create(owner, params, upload, request_context(request, owner))
    if isinstance(result, ApiError):
        return json_response(request, result.body, result.status)
    return json_response(request, _render(request, result))


def _filtered(request: web.Request, owner: Account, imports: list[SisImport]) -> list[SisImport]:
    """`created_since`, `created_before` (parsed as Canvas parses them) and `workflow_state[]`."""
    zone = time_zone(owner)
    since = parse_canvas_time(request.query.get("created_since"), zone)
    before = parse_canvas_time(request.query.get("created_before"), zone)
    wanted = set(request.query.getall("workflow_state[]", [])) | set(
        request.query.getall("workflow_state", [])
    )
    states = wanted & WORKFLOW_STATES
    return [
        imp
        for imp in imports
        if (since is None or imp.created_at > since)
        and (before is None or imp.created_at < before)
        and (not states or imp.workflow_state in states)
    ]


async def list_imports(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    mine = [imp for imp in backend(request).engine.imports.values() if imp.account_id == owner.id]
    newest_first = sorted(_filtered(request, owner, mine), key=lambda i: (i.created_at, i.id), reverse=True)
    # No rel="last": Canvas paginates this list without counting it.
    shown, links = paginate(request, newest_first, with_last=False)
    response = json_response(request, {"sis_imports": [_render(request, imp) for imp in shown]})
    response.headers["Link"] = links
    return response


async def importing(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    running = [
        imp
        for imp in backend(request).engine.imports.values()
        if imp.account_id == owner.id and imp.workflow_state in RUNNING
    ]
    return json_response(request, {"sis_imports": [_render(request, imp) for imp in running]})


async def show_import(request: web.Request) -> web.Response:
    found = sis_import(request)
    if isinstance(found, web.Response):
        return found
    return json_response(request, _render(request, found[1]))


async def abort_import(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    imp = import_of(request, owner)
    if imp is None or imp.workflow_state not in NOT_COMPLETED:
        return json_response(request, NOT_FOUND, 404)
    backend(request).engine.abort_batch(imp)
    return json_response(request, _render(request, imp))


async def abort_all_pending(request: web.Request) -> web.Response:
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    backend(request).engine.abort_all_pending(owner.id)
    return json_response(request, {"aborted": True})


async def restore_states(request: web.Request) -> web.Response:
    """`PUT .../restore_states`: a Progress; `restoring` and then the final state come from a job."""
    found = sis_import(request)
    if isinstance(found, web.Response):
        return found
    imp = found[1]
    params = await request_params(request)
    flags = {name: to_bool(params.get(name)) for name in ("batch_mode", "undelete_only", "unconclude_only")}
    if flags["undelete_only"] and flags["unconclude_only"]:
        return json_response(request, "cannot set both undelete_only and unconclude_only", 400)
    progress = backend(request).engine.restore_states(imp, partial=any(flags.values()))
    if progress is None:
        return json_response(request, {"message": "the sandbox restores finished imports only"}, 400)
    return json_response(request, progress_json(progress, base_url(request)))


def build_app(backend_: Backend, gatekeeper: Gatekeeper) -> web.Application:
    with warnings.catch_warnings():
        # aiohttp deprecates `router=`, yet it is the one public way to resolve a route on another
        # path than the request's own: Canvas's leniency, without redirecting the client.
        warnings.simplefilter("ignore", DeprecationWarning)
        app = web.Application(
            router=CanvasRouter(), middlewares=[canvas_middleware], client_max_size=MAX_UPLOAD_BYTES
        )
    app[BACKEND] = backend_
    app[GATEKEEPER] = gatekeeper
    base = "/api/v1/accounts/{account_id}"
    imports = base + "/sis_imports"
    app.router.add_get(base, get_account)
    app.router.add_get(base + "/terms", list_terms)
    app.router.add_get(base + "/terms/{term_id}", show_term)
    app.router.add_post(imports, create_import)
    app.router.add_get(imports, list_imports)
    app.router.add_get(imports + "/importing", importing)
    app.router.add_put(imports + "/abort_all_pending", abort_all_pending)
    app.router.add_get(imports + "/{import_id}", show_import)
    app.router.add_put(imports + "/{import_id}/abort", abort_import)
    app.router.add_put(imports + "/{import_id}/restore_states", restore_states)
    add_result_routes(app)
    return app
