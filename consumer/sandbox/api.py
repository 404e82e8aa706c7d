"""The HTTP face of the simulated Canvas: the Accounts and SIS Imports endpoints of CANVAS.md §5.

Handlers only translate HTTP to `ImportEngine` calls and rows to JSON; the rules live in
`lifecycle`, `params` and `render`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from multidict import MultiDict

from consumer.sandbox.accounts import Account, Directory
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.lifecycle import ImportEngine, Upload
from consumer.sandbox.live_events import RequestContext
from consumer.sandbox.middleware import (
    GATEKEEPER,
    NOT_FOUND,
    UNAUTHORIZED,
    Gatekeeper,
    canvas_middleware,
    json_response,
    record,
    token_account,
)
from consumer.sandbox.model import NOT_COMPLETED, RUNNING, SisImport
from consumer.sandbox.params import ApiError, raw_upload_name
from consumer.sandbox.render import account_json, sis_import_json

MAX_UPLOAD_BYTES = 512 * 1024 * 1024
EXCLUDED_FROM_LINKS = frozenset({"page", "per_page", "access_token", "api_key"})


@dataclass(frozen=True, slots=True)
class Backend:
    directory: Directory
    engine: ImportEngine
    knobs: Knobs


BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)


def _backend(request: web.Request) -> Backend:
    return request.app[BACKEND]


def _base_url(request: web.Request) -> str:
    return str(request.url.origin())


def _account(request: web.Request) -> Account | web.Response:
    """The `:account_id` of the URL, if the token may use it."""
    backend = _backend(request)
    owner = token_account()
    account = backend.directory.resolve(request.match_info["account_id"], owner)
    if account is None:
        return json_response(request, NOT_FOUND, 404)
    if not backend.directory.can_manage(owner, account):
        return json_response(request, UNAUTHORIZED, 401)
    return account


def _sis_account(request: web.Request) -> Account | web.Response:
    """`SisImportsApiController#check_account`: root accounts with SIS imports enabled only."""
    account = _account(request)
    if isinstance(account, web.Response):
        return account
    if not account.is_root:
        body = {"errors": ["SIS imports can only be executed on root accounts"]}
        return json_response(request, body, 400)
    if not account.sis_imports_enabled:
        return json_response(request, {"errors": ["SIS imports are not enabled for this account"]}, 403)
    return account


def _import_of(request: web.Request, account: Account) -> SisImport | None:
    imp = _backend(request).engine.imports.get(int(request.match_info["import_id"]))
    return imp if imp is not None and imp.account_id == account.id else None


def _render(request: web.Request, imp: SisImport) -> dict[str, Any]:
    return sis_import_json(imp, _base_url(request))


def request_context(request: web.Request, account: Account) -> RequestContext:
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
        context=account,
        user=account.admin,
    )


async def get_account(request: web.Request) -> web.Response:
    account = _account(request)
    if isinstance(account, web.Response):
        return account
    return json_response(request, account_json(account))


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
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    read = await _read_upload(request)
    if isinstance(read, ApiError):
        return json_response(request, read.body, read.status)
    params, upload = read
    rec = record()
    rec.params, rec.file_name, rec.file_bytes = dict(params), upload.name, upload.data
    engine = _backend(request).engine
    result = await engine.create(account, params, upload, request_context(request, account))
    if isinstance(result, ApiError):
        return json_response(request, result.body, result.status)
    return json_response(request, _render(request, result))


def _filtered(request: web.Request, imports: list[SisImport]) -> list[SisImport]:
    since = _parse_time(request.query.get("created_since"))
    before = _parse_time(request.query.get("created_before"))
    states = set(request.query.getall("workflow_state[]", [])) | set(
        request.query.getall("workflow_state", [])
    )
    return [
        imp
        for imp in imports
        if (since is None or imp.created_at > since)
        and (before is None or imp.created_at < before)
        and (not states or imp.workflow_state in states)
    ]


def _parse_time(raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _int_param(raw: str | None, default: int) -> int:
    return int(raw) if raw is not None and raw.isdigit() else default


def _link_header(request: web.Request, page: int, per_page: int, has_next: bool) -> str:
    kept = MultiDict((k, v) for k, v in request.query.items() if k not in EXCLUDED_FROM_LINKS)

    def link(number: int, rel: str) -> str:
        query = MultiDict(kept)
        query.extend({"page": str(number), "per_page": str(per_page)})
        return f'<{request.url.with_query(query)}>; rel="{rel}"'

    links = [link(page, "current")]
    if has_next:
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(page - 1, "prev"))
    links.append(link(1, "first"))
    return ",".join(links)


async def list_imports(request: web.Request) -> web.Response:
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    backend = _backend(request)
    knobs = backend.knobs
    mine = [imp for imp in backend.engine.imports.values() if imp.account_id == account.id]
    newest_first = sorted(_filtered(request, mine), key=lambda i: (i.created_at, i.id), reverse=True)
    page = max(1, _int_param(request.query.get("page"), 1))
    per_page = min(
        max(1, _int_param(request.query.get("per_page"), knobs.per_page_default)), knobs.per_page_max
    )
    start = (page - 1) * per_page
    shown = newest_first[start : start + per_page]
    response = json_response(request, {"sis_imports": [_render(request, imp) for imp in shown]})
    # No rel="last": Canvas paginates this list without counting it.
    response.headers["Link"] = _link_header(request, page, per_page, start + per_page < len(newest_first))
    return response


async def importing(request: web.Request) -> web.Response:
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    running = [
        imp
        for imp in _backend(request).engine.imports.values()
        if imp.account_id == account.id and imp.workflow_state in RUNNING
    ]
    return json_response(request, {"sis_imports": [_render(request, imp) for imp in running]})


async def show_import(request: web.Request) -> web.Response:
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    imp = _import_of(request, account)
    if imp is None:
        return json_response(request, NOT_FOUND, 404)
    return json_response(request, _render(request, imp))


async def abort_import(request: web.Request) -> web.Response:
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    imp = _import_of(request, account)
    if imp is None or imp.workflow_state not in NOT_COMPLETED:
        return json_response(request, NOT_FOUND, 404)
    _backend(request).engine.abort_batch(imp)
    return json_response(request, _render(request, imp))


async def abort_all_pending(request: web.Request) -> web.Response:
    account = _sis_account(request)
    if isinstance(account, web.Response):
        return account
    _backend(request).engine.abort_all_pending(account.id)
    return json_response(request, {"aborted": True})


def build_app(backend: Backend, gatekeeper: Gatekeeper) -> web.Application:
    app = web.Application(middlewares=[canvas_middleware], client_max_size=MAX_UPLOAD_BYTES)
    app[BACKEND] = backend
    app[GATEKEEPER] = gatekeeper
    base = "/api/v1/accounts/{account_id}"
    imports = base + "/sis_imports"
    app.router.add_get(base, get_account)
    app.router.add_post(imports + "{ext:(\\.json)?}", create_import)
    app.router.add_get(imports + "{ext:(\\.json)?}", list_imports)
    app.router.add_get(imports + "/importing", importing)
    app.router.add_put(imports + "/abort_all_pending", abort_all_pending)
    app.router.add_get(imports + "/{import_id:\\d+}", show_import)
    app.router.add_put(imports + "/{import_id:\\d+}/abort", abort_import)
    return app
