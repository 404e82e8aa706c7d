"""Faults the simulated Canvas does not make on its own: a 5xx from Canvas or the load balancer in
front of it (before or after the request did its work), and an answer the daemon cannot use.

`FaultyCanvas` is the in-flight proxy of `canvas_thread` with faults injected per request: every
request it does not fault passes through to the simulated Canvas unchanged, and it records what it
answered, when, so a test can count attempts and measure the spacing between them.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from aiohttp import web

from tests.reconcile.canvas_thread import InFlightProxy

GATEWAY_PAGE = "<html><head><title>{status}</title></head><body><h1>{status}</h1></body></html>\n"
"""What a load balancer says: an HTML page, no JSON, no rate-limit headers."""


@dataclass
class Fault:
    """Answer the next `times` requests whose method is `method` and whose path matches `path`."""

    method: str
    path: str
    """A regular expression searched in the request path."""
    status: int = 503
    times: int = 1
    after_canvas: bool = False
    """Let Canvas handle the request first (a POST creates its import), then answer `status`: a
    gateway timing out on an answer that was already on its way."""
    rewrite: Callable[[Any], Any] | None = None
    """Instead of `status`: Canvas's own JSON answer, changed by this function."""

    def takes(self, request: web.Request) -> bool:
        if self.times > 0 and request.method == self.method and re.search(self.path, request.path):
            self.times -= 1
            return True
        return False


def without(key: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A `rewrite`: Canvas's answer without `key`."""
    return lambda body: {k: v for k, v in body.items() if k != key}


@dataclass(frozen=True, slots=True)
class Answered:
    method: str
    path: str
    status: int
    at: float
    """`time.monotonic()` when the request arrived."""


class FaultyCanvas(InFlightProxy):
    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.faults: list[Fault] = []
        self.answered: list[Answered] = []

    def inject(self, fault: Fault) -> None:
        """Arm a copy of `fault` (so one `Fault` can be a test parameter used again and again)."""
        self.faults.append(replace(fault))

    def statuses(self, method: str, path: str) -> list[int]:
        """What the client got, in order, for requests matching `path` (a regular expression)."""
        return [a.status for a in self.answered if a.method == method and re.search(path, a.path)]

    async def _forward(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        fault = next((f for f in self.faults if f.takes(request)), None)
        if fault is None or fault.after_canvas or fault.rewrite is not None:
            response = await super()._forward(request)
        if fault is not None and fault.rewrite is not None:
            assert isinstance(response.body, bytes)
            body = fault.rewrite(json.loads(response.body))
            headers = {k: v for k, v in response.headers.items() if k.lower().startswith("x-")}
            response = web.json_response(body, status=response.status, headers=headers)
        elif fault is not None:
            page = GATEWAY_PAGE.format(status=fault.status)
            response = web.Response(status=fault.status, text=page, content_type="text/html")
        self.answered.append(Answered(request.method, request.path, response.status, arrived))
        return response
