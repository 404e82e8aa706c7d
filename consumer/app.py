"""Wiring: settings -> store, queue, metrics, HTTP, worker, watchdog; and the shutdown sequence.

`sis-consumer run` and `sis-consumer demo` both come through `serve`, so the demo shows the real
code path.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from typing import Protocol

import structlog
from prometheus_client import CollectorRegistry

from consumer import __version__
from consumer.adapters.canvas import open_canvas
from consumer.adapters.sqs import open_queue
from consumer.config import NO_TOKEN_NOTE, Settings
from consumer.errors import QueueError
from consumer.handler import MessageHandler
from consumer.observability import http
from consumer.observability.metrics import Metrics
from consumer.ports import Clock, SystemClock
from consumer.reconciler import Reconciler, ReconcileSettings
from consumer.stores import instance_id, leader_for, open_store
from consumer.watchdog import Watchdog
from consumer.worker import PollSettings, Worker

log = structlog.get_logger("sis_consumer.app")

FORCED_EXIT = 1


class Loop(Protocol):
    """A timer loop the app owns: it runs until `stop` is set."""

    async def run(self, stop: asyncio.Event) -> None: ...


class Signals:
    """First SIGTERM/SIGINT: stop gracefully. Second: force."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()

    def received(self, signum: int) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            log.warning("shutdown.forced", signal=name)
            self.force.set()
        else:
            log.info("shutdown.requested", signal=name)
            self.stop.set()

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.received, signum)
        try:
            yield
        finally:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)


async def serve(
    settings: Settings,
    signals: Signals,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock | None = None,
    on_ready: Callable[[int], None] | None = None,
) -> int:
    """Run the daemon until `signals.stop`; returns the process exit code."""
    queue_url = settings.require_queue()
    registry = registry or CollectorRegistry()
    clock = clock or SystemClock()
    metrics = Metrics(registry, silent_after=settings.stuck_silent)
    health = http.Health(stall_after=settings.stall_after)

    def on_request(operation: str, result: str) -> None:
        metrics.sqs_requests.labels(operation, result).inc()

    owner = instance_id()
    async with AsyncExitStack() as stack:
        store = await stack.enter_async_context(
            open_store(settings, owner=owner, hook=metrics.record_store_request)
        )
        queue = await stack.enter_async_context(
            open_queue(
                queue_url,
                settings.dlq_url,
                region=settings.region,
                pool_size=settings.pollers + 4,
                hook=on_request,
            )
        )
        port = await stack.enter_async_context(
            http.serve(
                http.make_app(registry, health, store.ping), settings.metrics_host, settings.metrics_port
            )
        )
        log.info(
            "daemon.started",
            version=__version__,
            metrics=f"http://{settings.metrics_host}:{port}/metrics",
            queue=queue_url,
            store=settings.store_url,
            pollers=settings.pollers,
            instance=owner,
        )
        if settings.canvas_token is None:
            log.warning("daemon.no_canvas_token", detail=f"SIS_CONSUMER_CANVAS_TOKEN {NO_TOKEN_NOTE}")
        try:
            await queue.check()
            health.sqs_result(None)
        except QueueError as exc:  # keep running: the poll loop retries, /readyz says why
            health.sqs_result(str(exc))
            log.error("daemon.queue_unreachable", error=str(exc))
        metrics.prime(settings.accounts)
        metrics.describe_setup(settings.canvas_url, settings.expect_success_every)
        last_event = await store.last_event_received()
        if last_event is not None:
            metrics.last_event.set(last_event.timestamp())
        if on_ready is not None:
            on_ready(port)

        leader = leader_for(store, owner, settings, on_change=metrics.leader.set)
        handler = MessageHandler(store, metrics, clock, settings.accounts)
        worker = Worker(
            queue,
            handler,
            PollSettings(
                pollers=settings.pollers,
                wait_seconds=settings.wait_time_seconds,
                visibility_timeout=round(settings.visibility_timeout),
            ),
            metrics,
            health,
        )
        watchdog = Watchdog(
            store,
            metrics,
            clock,
            settings.gauge_interval,
            settings.stuck_thresholds,
            leader,
            last_event=lambda: handler.last_event_at,
            learning=settings.learning,
            accounts=settings.accounts,
            canvas_url=settings.canvas_url,
        )
        reconciler = None
        if settings.canvas_url and settings.canvas_token is not None:
            canvas = await stack.enter_async_context(
                open_canvas(settings.canvas_url, settings.canvas_token, hook=metrics.record_canvas_response)
            )
            reconciler = Reconciler(
                canvas,
                store,
                metrics,
                clock,
                ReconcileSettings(
                    reconcile_after=settings.reconcile_after,
                    spacing=settings.reconcile_spacing,
                    interval=settings.gauge_interval,
                    look_again_after=settings.reconcile_after,
                ),
                leader,
            )
        return await _run_until_stopped(
            worker, [leader, watchdog, reconciler], signals, settings.shutdown_grace
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def _run_until_stopped(
    worker: Worker,
    timers: list[Loop | None],
    signals: Signals,
    grace: float,
) -> int:
    worker_task = asyncio.create_task(worker.run(signals.stop), name="worker")
    timer_tasks = [asyncio.create_task(t.run(signals.stop)) for t in timers if t is not None]
    stop_wait = asyncio.create_task(signals.stop.wait())
    await asyncio.wait({worker_task, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
    signals.stop.set()  # also when the worker ended on its own (a bug): wind everything down
    log.info("shutdown.draining", grace_seconds=grace)
    force_wait = asyncio.create_task(signals.force.wait())
    done, _ = await asyncio.wait(
        {worker_task, force_wait}, timeout=grace, return_when=asyncio.FIRST_COMPLETED
    )
    forced = worker_task not in done
    if forced:
        log.warning(
            "shutdown.cancelling",
            reason="second signal" if signals.force.is_set() else "grace period over",
            detail="a long poll cut short may leave a message hidden until its visibility timeout",
        )
        worker_task.cancel()
    for task in (worker_task, *timer_tasks, force_wait, stop_wait):
        task.cancel()
    results = await asyncio.gather(worker_task, *timer_tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.error("shutdown.task_failed", error=repr(result))
    log.info("daemon.stopped", forced=forced)
    return FORCED_EXIT if forced else 0
