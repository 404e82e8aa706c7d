"""What a URL of the simulated Canvas names, and how lists are paged. Shared by the API modules.

The account in a URL is checked as Canvas's `get_context` and `SisImportsApiController#check_account`
do; lists are paged as `Api.paginate` pages them, with `Link` headers on the canonical URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiohttp import web
from multidict import MultiDict

from consumer.sandbox.accounts import Account, Directory
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.lifecycle import ImportEngine
from consumer.sandbox.middleware import FORM_TYPES, NOT_FOUND, UNAUTHORIZED, json_response, token_account
from consumer.sandbox.model import SisImport
from consumer.sandbox.routing import canonical_path

EXCLUDED_FROM_LINKS = frozenset({"page", "per_page", "access_token", "api_key"})
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backend:
    directory: Directory
    engine: ImportEngine
    knobs: Knobs


BACKEND: web.AppKey[Backend] = web.AppKey("backend", Backend)


def backend(request: web.Request) -> Backend:
    return request.app[BACKEND]


def base_url(request: web.Request) -> str:
    return str(request.url.origin())


def account(request: web.Request) -> Account | web.Response:
    """The `:account_id` of the URL, if the token may use it."""
    directory = backend(request).directory
    owner = token_account()
    if owner is None:
        return json_response(request, NOT_FOUND, 404)
    found = directory.resolve(request.match_info["account_id"], owner)
    if found is None:
        return json_response(request, NOT_FOUND, 404)
    if not directory.can_manage(owner, found):
        return json_response(request, UNAUTHORIZED, 401)
    return found


def sis_account(request: web.Request) -> Account | web.Response:
    """`check_account`: root accounts with SIS imports enabled only."""
    found = account(request)
    if isinstance(found, web.Response):
        return found
    if not found.is_root:
        return json_response(request, {"errors": ["SIS imports can only be executed on root accounts"]}, 400)
    if not found.sis_imports_enabled:
        return json_response(request, {"errors": ["SIS imports are not enabled for this account"]}, 403)
    return found


def import_of(request: web.Request, owner: Account) -> SisImport | None:
    """`@account.sis_batches.find(params[:id])`."""
    raw = request.match_info["import_id"]
    imp = backend(request).engine.imports.get(int(raw)) if raw.isdigit() else None
    return imp if imp is not None and imp.account_id == owner.id else None


def sis_import(request: web.Request) -> tuple[Account, SisImport] | web.Response:
    """The `:import_id` of the URL, of the URL's (SIS-enabled root) account: else the error answer."""
    owner = sis_account(request)
    if isinstance(owner, web.Response):
        return owner
    imp = import_of(request, owner)
    if imp is None:
        return json_response(request, NOT_FOUND, 404)
    return owner, imp


def time_zone(owner: Account) -> ZoneInfo:
    """`Time.zone` of an API request: the user's zone, else the account's (the sandbox has the latter)."""
    return ZoneInfo(owner.time_zone)


def _int_param(raw: str | None, default: int) -> int:
    return int(raw) if raw is not None and raw.isdigit() else default


def paginate(request: web.Request, rows: Sequence[T], *, with_last: bool) -> tuple[Sequence[T], str]:
    """The page `page`/`per_page` ask for, and its `Link` header. `with_last`: Canvas counts the
    list (SIS import errors) or, for lists it will not count (SIS imports), leaves `rel="last"` out."""
    knobs = backend(request).knobs
    page = max(1, _int_param(request.query.get("page"), 1))
    per_page = min(
        max(1, _int_param(request.query.get("per_page"), knobs.per_page_default)), knobs.per_page_max
    )
    start = (page - 1) * per_page
    kept = MultiDict((k, v) for k, v in request.query.items() if k not in EXCLUDED_FROM_LINKS)
    url = request.url.with_path(canonical_path(request.path))

    def link(number: int, rel: str) -> str:
        query = MultiDict(kept)
        query.extend({"page": str(number), "per_page": str(per_page)})
        return f'<{url.with_query(query)}>; rel="{rel}"'

    links = [link(page, "current")]
    if start + per_page < len(rows):
        links.append(link(page + 1, "next"))
    if page > 1:
        links.append(link(page - 1, "prev"))
    links.append(link(1, "first"))
    if with_last:
        links.append(link(max(1, -(-len(rows) // per_page)), "last"))
    return rows[start : start + per_page], ",".join(links)


async def request_params(request: web.Request) -> dict[str, str]:
    """Rails's `params` of a request: the query string and a form body (token left out)."""
    params = {k: v for k, v in request.query.items() if k != "access_token"}
    if request.content_type in FORM_TYPES and request.can_read_body:
        form = await request.post()
        params |= {k: v for k, v in form.items() if isinstance(v, str) and k != "access_token"}
    return params
