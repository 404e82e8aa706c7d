"""Canvas having a bad day, on demand: what the simulated Canvas answers while a fault is on.

Real Canvas sits behind load balancers: during an outage or a deploy, requests get an HTML error
page (5xx), sometimes with bytes that are not UTF-8, hang until the client gives up, or — when a
token is revoked or rotated — a 401. Tests switch a fault on, watch the daemon live through it,
and switch it off again. Every request a fault answers is still logged in `SimulatedCanvas.requests`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Literal, get_args

from aiohttp import web

Fault = Literal["error_page", "bad_bytes", "hang", "unauthorized"]
FAULTS: frozenset[str] = frozenset(get_args(Fault))

_ERROR_PAGE = b"<html><head><title>503 Service Unavailable</title></head><body>Try again later.</body></html>"
# Latin-1 bytes from a misconfigured proxy, served as if they were UTF-8.
_BAD_BYTES = b"<html><body><h1>502 Bad Gateway</h1><p>Passerelle d\xe9faillante \xff\xfe</p></body></html>"


@dataclass(slots=True)
class Faults:
    """The fault now on (None: Canvas answers truthfully), and how many requests faults answered."""

    current: Fault | None = None
    method: str | None = None
    """Only requests of this HTTP method get the fault (None: every request)."""
    hang_seconds: float = 30.0
    """How long a `hang` keeps a request waiting before it answers 504 (longer than any client waits)."""
    answered: int = 0

    def start(self, fault: Fault, *, method: str | None = None) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose from {sorted(FAULTS)}")
        self.current, self.method = fault, method

    def stop(self) -> None:
        self.current = None

    async def answer(self, method: str) -> web.Response | None:
        """The faulty answer to a request, or None to let Canvas answer it."""
        fault = self.current
        if fault is None or self.method not in (None, method):
            return None
        self.answered += 1
        if fault == "error_page":
            return web.Response(status=503, body=_ERROR_PAGE, content_type="text/html", charset="utf-8")
        if fault == "bad_bytes":
            return web.Response(status=502, body=_BAD_BYTES, content_type="text/html", charset="utf-8")
        if fault == "hang":
            await asyncio.sleep(self.hang_seconds)
            return web.Response(status=504, body=_ERROR_PAGE, content_type="text/html", charset="utf-8")
        return web.json_response({"errors": [{"message": "Invalid access token."}]}, status=401)
