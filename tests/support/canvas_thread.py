"""The simulated Canvas on its own event loop, in a thread, next to the real daemon process.

The e2e `Daemon` helper waits synchronously (`tests.support.waiting.wait_until`): a simulated Canvas on the
test's own loop would freeze during those waits, so it gets a loop of its own. Everything that
touches it goes through `run` (a coroutine) or `read` (a function), both executed on its loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import Queues
from consumer.sandbox.model import SisImport
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsPublisher
from consumer.sandbox.waiting import wait_until

T = TypeVar("T")

ACCOUNT_ID = 1
"""The root account whose token the daemon gets: the only one it reconciles."""


class InFlightProxy:
    """A pass-through HTTP proxy in front of the simulated Canvas that counts concurrent requests.

    It measures, from outside the daemon, what `at most one request in flight` promises.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.in_flight = 0
        self.max_in_flight = 0
        self.url = ""
        self._stack = contextlib.AsyncExitStack()
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> InFlightProxy:
        self._session = await self._stack.enter_async_context(aiohttp.ClientSession())
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._stack.push_async_callback(runner.cleanup)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))  # the kernel picks a free port: no race
        await web.SockSite(runner, sock).start()
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def _forward(self, request: web.Request) -> web.Response:
        assert self._session is not None
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            keep = {"authorization", "accept", "content-type"}
            headers = {k: v for k, v in request.headers.items() if k.lower() in keep}
            async with self._session.request(
                request.method,
                self.target + request.rel_url.path_qs,
                headers=headers,
                data=await request.read(),
            ) as answer:
                body = await answer.read()
                passed = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower().startswith("x-") or k.lower() == "content-type"
                }
                return web.Response(status=answer.status, body=body, headers=passed)
        finally:
            self.in_flight -= 1


class CanvasThread:
    """A `SimulatedCanvas` publishing its Live Events to `queues`, served from a background thread."""

    def __init__(self, queues: Queues, knobs: Knobs, *, proxy: bool | type[InFlightProxy] = False) -> None:
        """`proxy`: put an `InFlightProxy` (True) or one of its subclasses in front of the Canvas."""
        self.queues = queues
        self.knobs = knobs
        self._want_proxy = proxy
        self.proxy: InFlightProxy | None = None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="simulated-canvas", daemon=True)
        self._stack = contextlib.AsyncExitStack()
        self._canvas: SimulatedCanvas | None = None

    @property
    def canvas(self) -> SimulatedCanvas:
        assert self._canvas is not None, "start() first"
        return self._canvas

    def start(self) -> CanvasThread:
        self._thread.start()
        self.run(self._open())
        return self

    async def _open(self) -> None:
        publisher = await self._stack.enter_async_context(SqsPublisher(self.queues))
        self._canvas = await self._stack.enter_async_context(SimulatedCanvas(None, self.knobs, publisher))
        if self._want_proxy:
            kind = InFlightProxy if self._want_proxy is True else self._want_proxy
            self.proxy = kind(self._canvas.url)
            await self._stack.enter_async_context(self.proxy)

    def close(self) -> None:
        if self._thread.is_alive():
            with contextlib.suppress(Exception):
                self.run(self._stack.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
        self._loop.close()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def read(self, fn: Callable[[SimulatedCanvas], T]) -> T:
        """`fn(canvas)` on the Canvas's own loop, so it sees a consistent state."""

        async def call() -> T:
            return fn(self.canvas)

        return self.run(call())

    # ---- conveniences ---------------------------------------------------------------------------
    @property
    def url(self) -> str:
        """Where the daemon should send its Canvas requests (through the proxy when there is one)."""
        return self.proxy.url if self.proxy is not None else self.canvas.url

    @property
    def account_uuid(self) -> str:
        return self.canvas.account(ACCOUNT_ID).uuid

    @property
    def token(self) -> str:
        return self.canvas.tokens[ACCOUNT_ID]

    def env(self) -> dict[str, str]:
        return {"SIS_CONSUMER_CANVAS_URL": self.url, "SIS_CONSUMER_CANVAS_TOKEN": self.token}

    def start_import(self) -> int:
        """An import started in the Canvas UI (not through the API): returns its id."""
        imp: SisImport = self.run(self.canvas.start_import(ACCOUNT_ID))
        return imp.id

    def state(self, import_id: int) -> str:
        return self.read(lambda c: c.imports[import_id].workflow_state)

    def wait_for_state(self, import_id: int, *states: str, timeout: float = 10.0) -> None:
        self.run(self.canvas.wait_for_state(import_id, *states, timeout=timeout), timeout=timeout + 5)

    def wait(self, what: str, predicate: Callable[[SimulatedCanvas], object], timeout: float = 10.0) -> None:
        """Until `predicate(canvas)` holds, checked on the Canvas's loop."""
        check = functools.partial(predicate, self.canvas)
        self.run(wait_until(check, timeout, what=what), timeout=timeout + 5)

    def show_requests(self, import_id: int) -> list[int | None]:
        """Statuses of every `GET .../sis_imports/:id` of this import, in order."""
        suffix = f"/sis_imports/{import_id}"
        return self.read(
            lambda c: [r.status for r in c.requests if r.method == "GET" and r.path.endswith(suffix)]
        )
