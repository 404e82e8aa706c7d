"""How the simulated Canvas matches a URL to a route: Rails's leniency, not aiohttp's exactness.

Canvas is a Rails app, and Rails recognises a route on a normalised path: runs of slashes collapse
into one (`/api/v1//accounts/1`), a trailing slash is dropped (`.../sis_imports/`), and every route
has an optional format suffix (`.../sis_imports/7.json`). Clients written against Canvas rely on all
three (docs/canvas.md, "URLs"). The handler still sees the request as sent: `request.url` (what
Live Event metadata calls `url`) keeps the client's spelling, as Canvas's does.
"""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.web_urldispatcher import UrlMappingMatchInfo

_SLASHES = re.compile(r"/{2,}")
FORMAT_SUFFIX = ".json"


def canonical_path(path: str) -> str:
    """`/api/v1//accounts/1/sis_imports.json/` -> `/api/v1/accounts/1/sis_imports`."""
    path = _SLASHES.sub("/", path)
    if len(path) > 1:
        path = path.rstrip("/") or "/"
    head, _, last = path.rpartition("/")
    if last.endswith(FORMAT_SUFFIX) and len(last) > len(FORMAT_SUFFIX):
        path = f"{head}/{last.removesuffix(FORMAT_SUFFIX)}"
    return path


class CanvasRouter(web.UrlDispatcher):
    """Resolves a request by its canonical path; the request itself is left as it came."""

    async def resolve(self, request: web.Request) -> UrlMappingMatchInfo:
        canonical = canonical_path(request.rel_url.path)
        if canonical != request.rel_url.path:
            request = request.clone(rel_url=request.rel_url.with_path(canonical))
        return await super().resolve(request)
