"""The Canvas REST API through aiohttp: the SIS Imports API and the accounts API (docs/canvas.md, "The SIS
Imports API").

The token travels only in `Authorization: Bearer`; URLs never carry it, so no URL, error or log
line can leak it. Requests go one at a time per client (one client per token): Canvas throttles a
leaky bucket per token, and a burst only earns 403/429s.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any, Final
from urllib.parse import urljoin, urlsplit

import aiohttp

from consumer.config import Secret
from consumer.core.backoff import backoff_seconds
from consumer.errors import (
    CanvasBadRequest,
    CanvasError,
    CanvasForbidden,
    CanvasNotFound,
    CanvasThrottled,
    CanvasUnauthorized,
    CanvasUnavailable,
    CanvasUnreachable,
)
from consumer.ports import CanvasResponse

ACCEPT = "application/json+canvas-string-ids"
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})
SLOWEST_UPLOAD: Final = 64 * 1024
"""Bytes per second a POST's upload is given time for: a 100 MB zip may take 27 minutes."""

CanvasHook = Callable[[str, str, float | None, float | None], None]
"""Called after every response with (endpoint, status, X-Rate-Limit-Remaining, X-Request-Cost)."""


def is_throttled(status: int, text: str) -> bool:
    # The source answers 403 "Rate Limit Exceeded"; the current docs say 429. Treat both alike.
    return status == 429 or (status == 403 and "rate limit exceeded" in text.lower())


def refuses_token(status: int, text: str, before: bool | None) -> bool | None:
    """What an answer says of the token: refused (401, or a 403 that is not throttling), accepted
    (any other answer Canvas itself gave), or nothing new (throttled, 5xx: `before` stands)."""
    if is_throttled(status, text) or status >= 500:
        return before
    return status in (401, 403)


def error_message(body: Any, text: str) -> str:
    """Canvas's own words: `{"errors": [{"message": ...}]}`, `{"message": ...}`, or the text."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list):
            messages = [e.get("message", str(e)) if isinstance(e, dict) else str(e) for e in errors]
            return "; ".join(messages)
        if isinstance(errors, dict):
            return "; ".join(f"{k}: {v}" for k, v in errors.items())
        if "message" in body:
            return str(body["message"])
    return text.strip()[:500]


_ERRORS: dict[int, type[CanvasError]] = {
    400: CanvasBadRequest,
    401: CanvasUnauthorized,
    403: CanvasForbidden,
    404: CanvasNotFound,
}


def _float(value: str | None) -> float | None:
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


class CanvasClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        base_url: str,
        token: Secret,
        *,
        hook: CanvasHook | None = None,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 60.0,
        rand: Callable[[], float] = random.random,
        request_seconds: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._request_seconds = request_seconds
        self._origin = urlsplit(self.base_url)[:2]
        self._session = session
        self._token = token
        self._hook = hook
        self._attempts = attempts
        self._backoff_base = backoff_base
        self._backoff_cap = backoff_cap
        self._rand = rand
        self._lock = asyncio.Lock()
        self.remaining: float | None = None
        """`X-Rate-Limit-Remaining` of the latest response: what is left in Canvas's bucket."""
        self.most_remaining: float | None = None
        """The highest `X-Rate-Limit-Remaining` seen: about the size of the bucket."""
        self.token_refused: bool | None = None
        """What Canvas's latest API answer said of the token (`refuses_token`); None before one."""

    async def request(
        self,
        method: str,
        path_or_url: str,
        *,
        endpoint: str,
        params: Mapping[str, str] | None = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        retry_server_errors: bool = True,
        limits: aiohttp.ClientTimeout | None = None,
    ) -> CanvasResponse:
        """One API call with retries: throttling always, 5xx and network errors when
        `retry_server_errors` (not for a POST that may already have created something).
        `limits`: instead of the session's timeout (`request_seconds` for the whole call)."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        if urlsplit(url)[:2] != self._origin:
            raise CanvasError(f"refusing to send the token to another origin: {urlsplit(url).netloc}")
        all_headers = {"Authorization": f"Bearer {self._token.reveal()}", "Accept": ACCEPT, **(headers or {})}
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            try:
                async with self._lock:
                    response = await self._send(method, url, endpoint, params, data, all_headers, limits)
            except CanvasUnavailable as exc:
                if last or not (retry_server_errors or isinstance(exc, CanvasThrottled)):
                    raise
            else:
                return response
            await asyncio.sleep(
                backoff_seconds(attempt, base=self._backoff_base, cap=self._backoff_cap, rand=self._rand)
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        url: str,
        endpoint: str,
        params: Mapping[str, str] | None,
        data: Any,
        headers: Mapping[str, str],
        limits: aiohttp.ClientTimeout | None,
    ) -> CanvasResponse:
        options: dict[str, Any] = {} if limits is None else {"timeout": limits}
        try:
            async with self._session.request(
                method, url, params=params, data=data, headers=headers, **options
            ) as resp:
                # Not `resp.text()`: an error page from a proxy may not be the UTF-8 it claims.
                text = (await resp.read()).decode("utf-8", errors="replace")
                status = resp.status
                remaining = _float(resp.headers.get("X-Rate-Limit-Remaining"))
                cost = _float(resp.headers.get("X-Request-Cost"))
                request_id = resp.headers.get("X-Request-Context-Id")
                next_link = resp.links["next"].get("url") if "next" in resp.links else None
        except aiohttp.ClientConnectorError as exc:  # before a byte was sent: nothing can have run
            self._report(endpoint, "error", None, None)
            raise CanvasUnreachable(f"{method} {endpoint}: cannot connect: {exc}") from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            self._report(endpoint, "error", None, None)
            raise CanvasUnavailable(f"{method} {endpoint}: {type(exc).__name__}: {exc}") from exc
        self._report(endpoint, str(status), remaining, cost)
        self.token_refused = refuses_token(status, text, self.token_refused)
        try:
            body: Any = json.loads(text) if text else None
        except (ValueError, RecursionError):  # an HTML page, or JSON too deep to be Canvas's
            body = None
        if is_throttled(status, text):
            raise CanvasThrottled(f"{method} {endpoint}: throttled ({status})", status, request_id)
        if status >= 500:
            raise CanvasUnavailable(f"{method} {endpoint}: Canvas answered {status}", status, request_id)
        if status >= 400:
            error = _ERRORS.get(status, CanvasError)
            raise error(f"{method} {endpoint}: {status}: {error_message(body, text)}", status, request_id)
        return CanvasResponse(status, body, request_id, None if next_link is None else str(next_link))

    def _report(self, endpoint: str, status: str, remaining: float | None, cost: float | None) -> None:
        if remaining is not None:
            self.remaining = remaining
            self.most_remaining = max(remaining, self.most_remaining or 0.0)
        if self._hook is not None:
            self._hook(endpoint, status, remaining, cost)

    async def account(self, account_id: str = "self") -> dict[str, Any]:
        response = await self.request("GET", f"/api/v1/accounts/{account_id}", endpoint="accounts.show")
        return _object(response.body)

    async def sis_import(self, account_id: str, import_id: int) -> dict[str, Any]:
        response = await self.request(
            "GET", f"/api/v1/accounts/{account_id}/sis_imports/{import_id}", endpoint="sis_imports.show"
        )
        return _object(response.body)

    async def sis_imports(
        self, account_id: str, *, per_page: int = 50, max_pages: int = 10
    ) -> list[dict[str, Any]]:
        """Newest first, following `Link: rel="next"` for at most `max_pages` pages."""
        found: list[dict[str, Any]] = []
        url: str | None = f"/api/v1/accounts/{account_id}/sis_imports"
        params: Mapping[str, str] | None = {"per_page": str(per_page)}
        for _ in range(max_pages):
            if url is None:
                break
            response = await self.request("GET", url, endpoint="sis_imports.list", params=params)
            found += [_object(i) for i in _object(response.body).get("sis_imports", [])]
            url, params = response.next_url, None  # the next link carries its own query
        return found

    async def download(self, url: str) -> bytes:
        """A file of Canvas (an import's `errors_attachment.url`), following its redirects by hand:
        Canvas hands files out from another host (a signed URL), which must never get the token."""
        for _ in range(MAX_REDIRECTS + 1):
            same_origin = urlsplit(url)[:2] == self._origin
            headers = {"Authorization": f"Bearer {self._token.reveal()}"} if same_origin else {}
            try:
                async with (
                    self._lock,
                    self._session.get(url, headers=headers, allow_redirects=False) as resp,
                ):
                    self._report("files.download", str(resp.status), None, None)
                    if resp.status in REDIRECTS and "Location" in resp.headers:
                        url = urljoin(url, resp.headers["Location"])
                        continue
                    if resp.status >= 400:
                        fallback = CanvasUnavailable if resp.status >= 500 else CanvasError
                        error = _ERRORS.get(resp.status, fallback)
                        raise error(f"GET files.download: {resp.status}", resp.status)
                    return await resp.read()
            except aiohttp.ClientConnectorError as exc:
                raise CanvasUnreachable(f"GET files.download: cannot connect: {exc}") from exc
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise CanvasUnavailable(f"GET files.download: {type(exc).__name__}") from exc
        raise CanvasError(f"GET files.download: more than {MAX_REDIRECTS} redirects")

    async def create_sis_import(
        self,
        account_id: str,
        content: bytes,
        *,
        filename: str,
        params: Mapping[str, str],
        raw: bool = False,
        content_type: str = "application/zip",
    ) -> CanvasResponse:
        """POST an import, as multipart `attachment` or as a raw body. Retried only when throttled.

        The whole POST gets `request_seconds` plus the time the upload needs at `SLOWEST_UPLOAD`:
        cutting a slow upload short may leave an import in Canvas that we then record as failed
        (and a cron retry duplicates). No read timeout: the kernel's send buffer may still hold
        megabytes of the file when aiohttp would start it.
        """
        path = f"/api/v1/accounts/{account_id}/sis_imports"
        limits = aiohttp.ClientTimeout(
            total=self._request_seconds + len(content) / SLOWEST_UPLOAD, sock_connect=self._request_seconds
        )
        if raw:
            return await self.request(
                "POST",
                path,
                endpoint="sis_imports.create",
                params=params,
                data=content,
                headers={"Content-Type": content_type},
                retry_server_errors=False,
                limits=limits,
            )
        form = aiohttp.FormData()
        for key, value in params.items():
            form.add_field(key, value)
        form.add_field("attachment", content, filename=filename, content_type=content_type)
        return await self.request(
            "POST", path, endpoint="sis_imports.create", data=form, retry_server_errors=False, limits=limits
        )


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CanvasError(f"expected a JSON object from Canvas, got {type(value).__name__}")
    return value


@asynccontextmanager
async def open_canvas(
    base_url: str,
    token: Secret,
    *,
    hook: CanvasHook | None = None,
    request_seconds: float = 60.0,
    **options: Any,
) -> AsyncIterator[CanvasClient]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=request_seconds)) as session:
        yield CanvasClient(session, base_url, token, hook=hook, request_seconds=request_seconds, **options)
