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
from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.adapters.s3 import open_s3
from consumer.adapters.sqs import open_queue
from consumer.config import NO_TOKEN_NOTE, Settings, masked_url
from consumer.daemon.drop_folder import IntakeHandler, IntakeReporter
from consumer.daemon.handler import MessageHandler
from consumer.daemon.lease import Leadership, SoleLeader
from consumer.daemon.reconciler import Reconciler, ReconcileSettings
from consumer.daemon.watchdog import Watchdog
from consumer.daemon.worker import PollSettings, Worker
from consumer.errors import QueueError
from consumer.observability import http
from consumer.observability.metrics import Metrics
from consumer.ports import Clock, Store, SystemClock
from consumer.stores import instance_id, open_store

log = structlog.get_logger("sis_consumer.app")

FORCED_EXIT = 1
"""The stop had to be cut short: a second signal, or the grace ran out."""
CRASHED_EXIT = 70
"""A loop of the daemon ended by itself (EX_SOFTWARE): a bug; a supervisor should restart it."""


class Loop(Protocol):
    """A timer loop the app owns: it runs until `stop` is set."""

    async def run(self, stop: asyncio.Event) -> None: ...


class PollLoop(Loop, Protocol):
    """A poll loop: once stopped, what it received may settle until a deadline."""

    async def settle(self, deadline: float) -> int: ...


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
    # The watchdog refreshes every GAUGE_INTERVAL: /livez allows it STALL_AFTER, or 3 intervals.
    health = http.Health(
        stall_after=settings.stall_after, refresh_after=max(settings.stall_after, 3 * settings.gauge_interval)
    )

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
                hook=metrics.record_sqs_request,
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
            queue=masked_url(queue_url),
            store=masked_url(settings.store_url),
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

        leader = _leadership(store, owner, settings, on_change=metrics.leader.set)
        handler = MessageHandler(store, metrics, settings.accounts)
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
            durable=store.flush,
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
            expect_success=tuple(settings.expect_success_every),
            on_refreshed=health.refreshed,
        )
        reconciler = canvas = None
        if settings.canvas_url and settings.canvas_token is not None:
            canvas = await stack.enter_async_context(
                open_canvas(
                    settings.canvas_url,
                    settings.canvas_token,
                    hook=metrics.record_canvas_response,
                    request_seconds=settings.canvas_timeout,
                )
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
        workers: PollLoop = worker
        reporter = None
        if settings.intake_queue_url:
            assert canvas is not None  # the settings refuse a drop folder without Canvas
            intake, reporter = await _drop_folder(stack, settings, store, canvas, metrics, clock, leader)
            workers = _Together(worker, intake)
        return await _run_until_stopped(
            workers, [leader, watchdog, reconciler, reporter], signals, settings.shutdown_grace
        )
    raise AssertionError("unreachable")  # pragma: no cover


async def _drop_folder(
    stack: AsyncExitStack,
    settings: Settings,
    store: Store,
    canvas: CanvasClient,
    metrics: Metrics,
    clock: Clock,
    leader: Leadership | SoleLeader,
) -> tuple[Worker, IntakeReporter]:
    """The S3 drop folder's loop (its own queue, the same worker) and its reporter (leader only)."""
    assert settings.intake_queue_url is not None
    queue = await stack.enter_async_context(
        open_queue(
            settings.intake_queue_url,
            None,  # what cannot be decoded is left to the intake queue's redrive policy
            region=settings.region,
            pool_size=4,
            hook=metrics.record_sqs_request,
        )
    )
    objects = await stack.enter_async_context(open_s3(region=settings.region, hook=metrics.record_s3_request))
    try:
        await queue.check()
    except QueueError as exc:  # keep running: the loop retries and logs poll.failed
        log.error("intake.queue_unreachable", error=str(exc))
    metrics.prime_intake()
    log.info(
        "intake.started", queue=settings.intake_queue_url, prefixes=[r.prefix for r in settings.intake_rules]
    )
    worker = Worker(
        queue,
        IntakeHandler(settings.intake_rules, objects, canvas, store, metrics, clock),
        PollSettings(
            pollers=1,
            wait_seconds=settings.wait_time_seconds,
            visibility_timeout=round(settings.visibility_timeout),
            queue="intake",
        ),
        metrics,
        None,  # /livez and the last-poll gauge vouch for the Live Events loop only
        durable=store.flush,
    )
    return worker, IntakeReporter(store, objects, clock, leader, settings.gauge_interval)


class _Together:
    """Two poll loops run, drained and stopped as one."""

    def __init__(self, *workers: Worker) -> None:
        self._workers = workers

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for worker in self._workers:
                group.create_task(worker.run(stop))

    async def settle(self, deadline: float) -> int:
        cut = await asyncio.gather(*(worker.settle(deadline) for worker in self._workers))
        return sum(cut)


def _leadership(
    store: Store, owner: str, settings: Settings, on_change: Callable[[bool], None]
) -> Leadership | SoleLeader:
    """Replicas on a shared store elect a leader; the only process on a store leads."""
    leases = store.leases()
    if leases is None:
        on_change(True)
        return SoleLeader()
    return Leadership(leases, owner, duration=settings.lease, on_change=on_change)


def _reserves(grace: float) -> tuple[float, float]:
    """Of the grace, what is kept (after the polls are cut) for handling what they returned, and
    (after that) for closing the store, the queue client and the HTTP server."""
    return min(2.0, grace / 5), min(1.0, grace / 5)


async def _run_until_stopped(
    worker: PollLoop,
    timers: list[Loop | None],
    signals: Signals,
    grace: float,
) -> int:
    """Run until a signal, or until a loop ends on its own (a crash); then stop within `grace`.

    One deadline for the whole stop: polls in flight may finish until `grace` minus the reserves,
    the batches they returned may settle until `grace` minus the exit reserve, and the process
    then has that reserve to close everything.
    """
    loop = asyncio.get_running_loop()
    worker_task = asyncio.create_task(worker.run(signals.stop), name="worker")
    timer_tasks = [asyncio.create_task(t.run(signals.stop), name=type(t).__name__) for t in timers if t]
    stop_wait = asyncio.create_task(signals.stop.wait())
    await asyncio.wait({worker_task, stop_wait, *timer_tasks}, return_when=asyncio.FIRST_COMPLETED)
    ended = [] if signals.stop.is_set() else [t for t in (worker_task, *timer_tasks) if t.done()]
    for dead in ended:  # a loop ended by itself: a bug. Restart-on-failure supervisors must see it.
        error = None if dead.cancelled() else dead.exception()
        log.error("daemon.crashed", task=dead.get_name(), error=repr(error) if error else "ended")
    signals.stop.set()

    settle_reserve, exit_reserve = _reserves(grace)
    deadline = loop.time() + grace - exit_reserve
    log.info("shutdown.draining", grace_seconds=grace)
    force_wait = asyncio.create_task(signals.force.wait())
    done, _ = await asyncio.wait(
        {worker_task, force_wait},
        timeout=max(0.0, deadline - settle_reserve - loop.time()),
        return_when=asyncio.FIRST_COMPLETED,
    )
    forced = worker_task not in done
    if forced:
        log.warning(
            "shutdown.cancelling",
            reason="second signal" if signals.force.is_set() else "grace period over",
            detail="a long poll cut short may leave a message hidden until its visibility timeout",
        )
        worker_task.cancel()
    abandoned = await worker.settle(loop.time() if signals.force.is_set() else deadline)
    if timer_tasks:
        await asyncio.wait(timer_tasks, timeout=max(0.0, deadline - loop.time()))
    for task in (worker_task, *timer_tasks, force_wait, stop_wait):
        task.cancel()
    results = await asyncio.gather(worker_task, *timer_tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception) and not ended:
            log.error("shutdown.task_failed", error=repr(result))
    log.info("daemon.stopped", forced=forced, crashed=bool(ended), batches_abandoned=abandoned)
    if ended:
        return CRASHED_EXIT
    return FORCED_EXIT if forced else 0
