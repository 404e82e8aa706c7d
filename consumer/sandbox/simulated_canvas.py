"""`SimulatedCanvas`: the sandbox's Canvas as one async context manager, for tests and the demo.

    async with SimulatedCanvas(publish=sqs_publisher) as canvas:
        canvas.plan(1, outcome="failed")           # the next import of account 1 fails
        ...POST to f"{canvas.url}/api/v1/accounts/1/sis_imports" with canvas.headers(1)...
        await canvas.wait_for_state(import_id, "failed")

It owns its HTTP server and every task (the per-account job runners, event sending, late
`errors_attachment` writers): leaving the block cancels and awaits them all.
"""

from __future__ import annotations

import random
import socket
import uuid
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType, TracebackType
from typing import Self

from aiohttp import web

from consumer.sandbox.accounts import Account, Directory, default_accounts
from consumer.sandbox.api import build_app
from consumer.sandbox.delivery import Delivered, DeliveryFailure, Emitted, EventDelivery, Publish
from consumer.sandbox.faults import Faults
from consumer.sandbox.knobs import Knobs, Outcome, Plan, RunningState
from consumer.sandbox.lifecycle import ImportEngine, Now, Upload, utc_now
from consumer.sandbox.live_events import RequestContext
from consumer.sandbox.lookup import Backend
from consumer.sandbox.middleware import Gatekeeper, RequestRecord
from consumer.sandbox.model import SisImport
from consumer.sandbox.params import ApiError
from consumer.sandbox.throttle import Throttle
from consumer.sandbox.waiting import wait_until

UI_USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"
DEFAULT_CSV = (
    b"user_id,login_id,first_name,last_name,email,status\nu1,u1,Ada,Lovelace,ada@example.edu,active\n"
)


class SimulatedCanvas:
    def __init__(
        self,
        accounts: Iterable[Account] | None = None,
        knobs: Knobs | None = None,
        publish: Publish | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Now = utc_now,
    ) -> None:
        self.knobs = knobs or Knobs()
        self.directory = Directory.of(accounts if accounts is not None else default_accounts())
        self.requests: list[RequestRecord] = []
        self._delivery = EventDelivery(publish, self.knobs, random.Random(self.knobs.seed + 1))
        self._engine = ImportEngine(
            self.directory, self.knobs, self._delivery, random.Random(self.knobs.seed), clock
        )
        throttle = Throttle.new(
            self.knobs.throttle_capacity, self.knobs.throttle_leak_per_second, self.knobs.request_cost
        )
        self.faults = Faults()
        """Switch a fault on (`canvas.faults.start("bad_bytes")`) to make Canvas misbehave."""
        gate = Gatekeeper(
            self.directory, throttle, self.knobs.throttle_status, self.requests, faults=self.faults
        )
        self._app = build_app(Backend(self.directory, self._engine, self.knobs), gate)
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------------
    async def __aenter__(self) -> Self:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))  # port 0: the kernel picks a free one, no race
        self._runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=1.0)
        try:
            await self._runner.setup()
            await web.SockSite(self._runner, sock).start()
        except BaseException:
            sock.close()
            await self._runner.cleanup()
            raise
        port = sock.getsockname()[1]
        self.url = f"http://{self._host}:{port}"
        self._delivery.start()
        self._engine.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Outside in: no new requests, then no new state changes, then no more sending.
        if self._runner is not None:
            await self._runner.cleanup()
        await self._engine.close()
        await self._delivery.close()

    # ---- what tests read -------------------------------------------------------------------------
    @property
    def tokens(self) -> Mapping[int, str]:
        return {a.id: a.token for a in self.directory.roots if a.token is not None}

    def headers(self, account_id: int) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[account_id]}"}

    def account(self, account_id: int) -> Account:
        return self.directory.by_id[account_id]

    @property
    def imports(self) -> Mapping[int, SisImport]:
        return MappingProxyType(self._engine.imports)

    @property
    def published(self) -> list[Delivered]:
        """Every message sent, in sending order (a duplicate appears twice)."""
        return self._delivery.published

    @property
    def emitted(self) -> list[Emitted]:
        """Every event raised, in order, with what the delivery knobs did to it."""
        return self._delivery.emitted

    @property
    def dropped(self) -> list[Emitted]:
        return self._delivery.dropped

    @property
    def failures(self) -> list[DeliveryFailure]:
        """Events the publisher raised on: lost, as Canvas loses them when its endpoint is down."""
        return self._delivery.failures

    def events_for(self, sis_batch_id: int) -> list[Delivered]:
        return [d for d in self.published if d.sis_batch_id == sis_batch_id]

    # ---- what tests steer ------------------------------------------------------------------------
    def plan(
        self,
        account_id: int,
        outcome: Outcome = "imported",
        *,
        stuck: bool = False,
        stuck_in: RunningState = "importing",
        abort_in: RunningState = "importing",
        cleanup: bool | None = None,
        queue_seconds: float | None = None,
        importing_seconds: float | None = None,
        cleanup_seconds: float | None = None,
        errors_attachment_seconds: float | None = None,
        messages: int | None = None,
        lose: Iterable[str] = (),
        duplicate: Iterable[str] = (),
        delay: Mapping[str, float] | None = None,
    ) -> Plan:
        """Decide the fate of the next not-yet-planned import created on `account_id` (FIFO)."""
        plan = Plan(
            outcome=outcome,
            stuck=stuck,
            stuck_in=stuck_in,
            abort_in=abort_in,
            cleanup=cleanup,
            queue_seconds=queue_seconds,
            importing_seconds=importing_seconds,
            cleanup_seconds=cleanup_seconds,
            errors_attachment_seconds=errors_attachment_seconds,
            messages=messages,
            lose=frozenset(lose),
            duplicate=frozenset(duplicate),
            delay=dict(delay or {}),
        )
        self._engine.queue_plan(account_id, plan)
        return plan

    async def start_import(
        self,
        account_id: int,
        data: bytes = DEFAULT_CSV,
        file_name: str = "users.csv",
        params: Mapping[str, str] | None = None,
    ) -> SisImport:
        """An import started by someone else (the Canvas UI), not through this server's API."""
        root = self.directory.by_id[account_id]
        page = f"https://canvas.example.edu/accounts/{root.id}/sis_import"
        ctx = RequestContext(
            request_id=str(uuid.uuid4()),
            url=page,
            http_method="POST",
            hostname="canvas.example.edu",
            user_agent=UI_USER_AGENT,
            client_ip="203.0.113.7",
            referrer=page,
            session_id=uuid.uuid4().hex,
            context=root,
            user=root.admin,
        )
        upload = Upload(file_name, data, "text/csv")
        result = await self._engine.create(root, dict(params or {}), upload, ctx, origin="ui")
        if isinstance(result, ApiError):
            raise ValueError(f"Canvas refused the import: {result.status} {result.body}")
        return result

    async def abort(self, import_id: int) -> bool:
        """Abort an unfinished import as `PUT .../abort` would; False if it had finished."""
        return self._engine.abort_batch(self._engine.imports[import_id])

    def abort_all_pending(self, account_id: int) -> int:
        return self._engine.abort_all_pending(account_id)

    def stop_jobs(self, account_id: int | None = None) -> None:
        """Job workers down: imports stay `created` (a running one still finishes)."""
        for root in self._roots(account_id):
            self._engine.set_jobs_running(root, False)

    def start_jobs(self, account_id: int | None = None) -> None:
        for root in self._roots(account_id):
            self._engine.set_jobs_running(root, True)

    def _roots(self, account_id: int | None) -> list[int]:
        return [a.id for a in self.directory.roots if account_id in (None, a.id)]

    # ---- waiting ---------------------------------------------------------------------------------
    async def wait_for_state(self, import_id: int, *states: str, timeout: float = 5.0) -> SisImport:  # noqa: ASYNC109
        imp = self._engine.imports[import_id]
        await wait_until(lambda: imp.workflow_state in states, timeout, what=f"{import_id} in {states}")
        return imp

    async def wait_for_events(
        self,
        predicate: Callable[[list[Delivered]], bool],
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> list[Delivered]:
        await wait_until(lambda: predicate(self.published), timeout, what="published events")
        return self.published

    async def flush(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Wait until every event raised so far has been sent."""
        await self._delivery.flush(timeout)
