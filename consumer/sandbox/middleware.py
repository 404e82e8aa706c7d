"""What every response of the simulated Canvas goes through: request id, request log, auth, throttle.

Canvas does these in Rack middleware before any controller runs, so errors (401, throttling, 404s
of unknown routes) carry the same `X-Request-Context-Id` and `X-Rate-Limit-Remaining` headers as
successes (docs/canvas.md, "Authentication" and "Throttling").
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from consumer.sandbox.accounts import Account, Directory
from consumer.sandbox.faults import Faults
from consumer.sandbox.render import stringify_ids, wants_string_ids
from consumer.sandbox.throttle import Throttle, Verdict, throttled_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
NOT_FOUND = {"errors": [{"message": "The specified resource does not exist."}]}
UNAUTHENTICATED = {"status": "unauthenticated", "errors": [{"message": "user authorization required"}]}
INVALID_TOKEN = {"errors": [{"message": "Invalid access token."}]}
UNAUTHORIZED = {
    "status": "unauthorized",
    "errors": [{"message": "user not authorized to perform that action"}],
}


@dataclass(slots=True)
class RequestRecord:
    """One request as the simulated Canvas received it (the token's header left out)."""

    method: str
    path: str
    query_string: str
    query: dict[str, str]
    headers: dict[str, str]
    request_id: str
    at: datetime
    status: int | None = None
    account_id: int | None = None
    """The root account of the token, when it was valid."""
    params: dict[str, str] = field(default_factory=dict)
    """Create parameters (query string and form fields) of a POST."""
    file_name: str | None = None
    file_bytes: bytes | None = None


@dataclass(frozen=True, slots=True)
class Gatekeeper:
    directory: Directory
    throttle: Throttle
    throttle_status: int
    requests: list[RequestRecord]
    clock: Callable[[], float] = time.monotonic
    faults: Faults = field(default_factory=Faults)


GATEKEEPER: web.AppKey[Gatekeeper] = web.AppKey("gatekeeper", Gatekeeper)
# Per-request state lives in a context variable: aiohttp serves each request in its own task, and
# this works on every aiohttp version (typed request keys are recent).
_RECORD: ContextVar[RequestRecord] = ContextVar("sandbox_request")
_OWNER: ContextVar[Account] = ContextVar("sandbox_token_account")


def json_response(request: web.Request, data: Any, status: int = 200) -> web.Response:
    if wants_string_ids(request.headers.get("Accept")):
        data = stringify_ids(data)
    return web.json_response(data, status=status)


def token_account() -> Account | None:
    """The root account whose token authenticated the current request (None: a verified download)."""
    return _OWNER.get(None)


def record() -> RequestRecord:
    """The log entry of the current request."""
    return _RECORD.get()


FORM_TYPES = frozenset({"multipart/form-data", "application/x-www-form-urlencoded"})
PUBLIC_PREFIX = "/files/"
"""File downloads: their URL's verifier stands in for a token (`files.FileStore`)."""


async def _token(request: web.Request) -> str | None:
    """`AuthenticationMethods.access_token`: an `Authorization` header whose scheme is exactly
    `Bearer`, else the `access_token` request parameter (query string or form body)."""
    parts = request.headers.get("Authorization", "").split(None, 1)
    if len(parts) == 2 and parts[0] == "Bearer":
        return parts[1].strip()
    # A query-string token is how one leaks into `metadata.url`; a form field's does not.
    token = request.query.get("access_token")
    if not token and request.content_type in FORM_TYPES and request.can_read_body:
        field = (await request.post()).get("access_token")  # cached: the handler reads the same form
        token = field if isinstance(field, str) else None
    return token or None


def _error(status: int, body: dict[str, Any]) -> web.Response:
    response = web.json_response(body, status=status)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="canvas-lms"'
    return response


async def _guarded(
    request: web.Request, handler: Handler, gate: Gatekeeper
) -> tuple[web.StreamResponse, Verdict]:
    token = await _token(request)
    if token is None and request.path.startswith(PUBLIC_PREFIX):
        return await handler(request), gate.throttle.untouched()
    if token is None:
        return _error(401, UNAUTHENTICATED), gate.throttle.untouched()
    account = gate.directory.by_token.get(token)
    if account is None:
        return _error(401, INVALID_TOKEN), gate.throttle.untouched()
    _OWNER.set(account)
    record().account_id = account.id
    verdict = gate.throttle.charge(token, gate.clock())
    if not verdict.allowed:
        body = throttled_body(gate.throttle_status)
        return web.Response(status=gate.throttle_status, text=body, charset="utf-8"), verdict
    try:
        return await handler(request), verdict
    except web.HTTPException as exc:
        error = NOT_FOUND if exc.status == 404 else {"errors": [{"message": exc.reason}]}
        return _error(exc.status, error), verdict


@web.middleware
async def canvas_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    gate = request.app[GATEKEEPER]
    request_id = str(uuid.uuid4())
    headers = {k: v for k, v in request.headers.items() if k.lower() != "authorization"}
    rec = RequestRecord(
        method=request.method,
        path=request.path,
        query_string=request.query_string,
        query=dict(request.query),
        headers=headers,
        request_id=request_id,
        at=datetime.now(UTC),
    )
    _RECORD.set(rec)
    gate.requests.append(rec)
    faulty = await gate.faults.answer(request.method)  # from in front of Canvas (a proxy): no Canvas headers
    if faulty is not None:
        rec.status = faulty.status
        return faulty
    try:
        response, verdict = await _guarded(request, handler, gate)
    except Exception:
        log.exception("sandbox: %s %s failed", request.method, request.path)
        response = _error(500, {"errors": [{"message": "An error occurred."}]})
        verdict = gate.throttle.untouched()
    response.headers["X-Request-Context-Id"] = request_id
    response.headers.update(verdict.headers())
    rec.status = response.status
    return response
