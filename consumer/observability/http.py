"""The daemon's own HTTP endpoint: /metrics, /livez and /readyz.

/livez fails (and ECS replaces the task) when this process is stuck in a way a new one would not
be: its poll loop has not come back from a poll, or its watchdog has stopped refreshing the gauges
while the store answers (a replica with stale gauges pages for imports that finished, or holds a
page open). A store that is down fails /readyz instead: every new task would wait for it the same.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler

from consumer.errors import ListenError

STORE_PING_SECONDS = 2.0
"""How long /livez waits for the store before it takes it for down (ECS's probe waits 5 s)."""


@dataclass
class Health:
    """What the poll loop and adapters report, read by the probes."""

    stall_after: float
    refresh_after: float | None = None
    """How long the watchdog may go without refreshing the gauges; None: `stall_after`."""
    last_poll: float = field(default_factory=time.monotonic)
    last_refresh: float = field(default_factory=time.monotonic)
    sqs_ok: bool = False
    sqs_error: str | None = None

    def polled(self) -> None:
        self.last_poll = time.monotonic()

    def refreshed(self) -> None:
        self.last_refresh = time.monotonic()

    def refresh_stalled_for(self) -> float | None:
        idle = time.monotonic() - self.last_refresh
        return idle if idle > (self.refresh_after or self.stall_after) else None

    def sqs_result(self, error: str | None) -> None:
        self.sqs_ok, self.sqs_error = error is None, error

    def stalled_for(self) -> float | None:
        idle = time.monotonic() - self.last_poll
        return idle if idle > self.stall_after else None


def make_app(
    registry: CollectorRegistry, health: Health, store_ping: Callable[[], Awaitable[None]]
) -> web.Application:
    async def livez(_request: web.Request) -> web.Response:
        idle = health.stalled_for()
        if idle is not None:
            return web.Response(status=503, text=f"poll loop stalled: no poll for {idle:.0f}s\n")
        stale = health.refresh_stalled_for()
        if stale is not None:
            try:
                await asyncio.wait_for(store_ping(), STORE_PING_SECONDS)
            except Exception:  # the store is down: the watchdog waits for it, as a new task would
                return web.Response(text="ok (the watchdog waits for the store)\n")
            return web.Response(
                status=503,
                text=f"watchdog stalled: gauges not refreshed for {stale:.0f}s, the store answers\n",
            )
        return web.Response(text="ok\n")

    async def readyz(_request: web.Request) -> web.Response:
        problems = []
        if not health.sqs_ok:
            problems.append(f"sqs: {health.sqs_error or 'not reached yet'}")
        try:
            await store_ping()
        except Exception as exc:
            problems.append(f"store: {exc}")
        if problems:
            return web.Response(status=503, text="\n".join(problems) + "\n")
        return web.Response(text="ok\n")

    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    return app


@asynccontextmanager
async def serve(app: web.Application, host: str, port: int) -> AsyncIterator[int]:
    """Serve until the block exits; yields the bound port (useful with port 0)."""
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ListenError(
            f"cannot listen on {host}:{port} for /metrics ({os.strerror(exc.errno) if exc.errno else exc}): "
            "set SIS_CONSUMER_METRICS_ADDR to a free host:port"
        ) from None
    try:
        bound: int = runner.addresses[0][1] if runner.addresses else port
        yield bound
    finally:
        await runner.cleanup()
