"""`CanvasClient` against the simulated Canvas: auth, typed errors, throttling, pagination."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from consumer.adapters.canvas import ACCEPT, CanvasClient, CanvasHook, refuses_token
from consumer.config import Secret
from consumer.errors import (
    CanvasBadRequest,
    CanvasError,
    CanvasForbidden,
    CanvasNotFound,
    CanvasUnauthorized,
    CanvasUnreachable,
)
from consumer.sandbox.accounts import Account, default_accounts
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.sis_files import ACCOUNT_ID, USERS_CSV

NO_SIS = Account(
    id=4,
    name="Example Academy (SIS imports disabled)",
    uuid="nOsIsImPoRtS4aCcOuNtUuIdXq9vBn3LkPw7ZeRt",
    token="4~sandboxTokenExampleAcademyNoSis0000000000000000000000000000",  # sandbox only
    sis_imports_enabled=False,
)
WRONG_TOKEN = "1~thisTokenIsNotKnownToCanvasAtAll000000000000000000000000000"


@pytest.fixture
def canvas_accounts() -> tuple[Account, ...]:
    """The default accounts, and a root account whose SIS imports are disabled (403)."""
    return (*default_accounts(), NO_SIS)


@dataclass(frozen=True, slots=True)
class Sent:
    """A request as aiohttp put it on the wire."""

    method: str
    url: str
    headers: dict[str, str]


@asynccontextmanager
async def open_client(
    canvas: SimulatedCanvas,
    *,
    token: str | None = None,
    base_url: str | None = None,
    hook: CanvasHook | None = None,
    **options: Any,
) -> AsyncIterator[tuple[CanvasClient, list[Sent]]]:
    """A client for account 1 (or `token`), and the list of what it sent."""
    sent: list[Sent] = []

    async def on_start(
        _session: aiohttp.ClientSession, _ctx: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        sent.append(Sent(params.method, str(params.url), dict(params.headers)))

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        client = CanvasClient(
            session,
            base_url or canvas.url,
            Secret(token or canvas.tokens[ACCOUNT_ID]),
            hook=hook,
            **options,
        )
        yield client, sent


async def test_every_request_carries_the_bearer_token_and_string_ids_accept_and_no_token_in_the_url(
    canvas: SimulatedCanvas,
) -> None:
    token = canvas.tokens[ACCOUNT_ID]
    async with open_client(canvas) as (client, sent):
        await client.account()
        multipart = await client.create_sis_import("1", USERS_CSV, filename="users.csv", params={})
        raw = await client.create_sis_import(
            "1",
            USERS_CSV,
            filename="users.csv",
            params={"extension": "csv"},
            raw=True,
            content_type="text/csv",
        )
        await client.sis_import("1", int(multipart.body["id"]))
        await client.sis_imports("1", per_page=1, max_pages=2)

    assert raw.status == 200
    assert len(sent) == len(canvas.requests) == 6
    for request in sent:
        assert request.headers["Authorization"] == f"Bearer {token}", request
        assert request.headers["Accept"] == ACCEPT, request
        assert token not in request.url, request
    for received in canvas.requests:
        assert received.account_id == ACCOUNT_ID, received  # authenticated...
        assert "access_token" not in received.query, received  # ...not by the query string
        assert token not in received.path + received.query_string, received
        assert received.headers["Accept"] == ACCEPT, received
        assert received.status == 200, received
    assert isinstance(multipart.body["id"], str)  # what the canvas-string-ids Accept asks for


@pytest.mark.parametrize(
    ("token_of", "call", "error", "message", "refused"),
    [
        pytest.param(
            ACCOUNT_ID,
            lambda c: c.create_sis_import("3", USERS_CSV, filename="users.csv", params={}),
            CanvasBadRequest,
            "SIS imports can only be executed on root accounts",
            False,
            id="400",
        ),
        pytest.param(
            None, lambda c: c.account(), CanvasUnauthorized, "Invalid access token.", True, id="401"
        ),
        pytest.param(
            NO_SIS.id,
            lambda c: c.sis_imports(str(NO_SIS.id)),
            CanvasForbidden,
            "SIS imports are not enabled for this account",
            True,
            id="403",
        ),
        pytest.param(
            ACCOUNT_ID,
            lambda c: c.sis_import("1", 99),
            CanvasNotFound,
            "The specified resource does not exist.",
            False,
            id="404",
        ),
    ],
)
async def test_a_client_error_becomes_its_typed_error_with_canvas_message(
    canvas: SimulatedCanvas,
    token_of: int | None,
    call: Callable[[CanvasClient], Awaitable[Any]],
    error: type[CanvasError],
    message: str,
    refused: bool,
) -> None:
    """And the client remembers what the answer said of its token (401, a 403 that is no
    throttling: refused), what the leader exports for SisConsumerCanvasUnauthorized."""
    token = WRONG_TOKEN if token_of is None else canvas.tokens[token_of]
    async with open_client(canvas, token=token, backoff_base=0.01) as (client, _):
        with pytest.raises(CanvasError) as raised:
            await call(client)

    assert type(raised.value) is error
    assert message in str(raised.value)
    [request] = canvas.requests  # a client error is not retried
    assert raised.value.status == request.status
    assert raised.value.request_id == request.request_id
    assert client.token_refused is refused


@pytest.mark.parametrize("known", [None, False, True])
@pytest.mark.parametrize(
    ("status", "text"), [(429, ""), (403, "403 Forbidden (Rate Limit Exceeded)"), (502, "<html>")]
)
def test_a_throttled_or_failed_answer_says_nothing_new_of_the_token(
    status: int, text: str, known: bool | None
) -> None:
    assert refuses_token(status, text, known) is known


@dataclass
class Seen:
    """What the client's hook was told: (endpoint, status, X-Rate-Limit-Remaining, X-Request-Cost)."""

    calls: list[tuple[str, str, float | None, float | None]] = field(default_factory=list)

    def __call__(self, endpoint: str, status: str, remaining: float | None, cost: float | None) -> None:
        self.calls.append((endpoint, status, remaining, cost))

    @property
    def statuses(self) -> list[str]:
        return [c[1] for c in self.calls]

    @property
    def remaining(self) -> list[float | None]:
        return [c[2] for c in self.calls]


BACKOFF_BASE = 0.02
THROTTLING = [
    pytest.param(
        # Three quick requests fill the bucket; it takes ~0.1 s to take one more: a few backoffs.
        Knobs(throttle_capacity=2.0, throttle_leak_per_second=10.0, request_cost=1.0, throttle_status=status),
        id=f"{status}",
    )
    for status in (403, 429)
]


def assert_backed_off(canvas: SimulatedCanvas, throttled: int) -> None:
    """Each request after a throttled one waited at least the first backoff step."""
    times = [r.at for r in canvas.requests]
    gaps = [
        (later - earlier).total_seconds()
        for request, earlier, later in zip(canvas.requests, times, times[1:], strict=False)
        if request.status == throttled
    ]
    assert gaps, "the sandbox never throttled"
    assert min(gaps) >= BACKOFF_BASE * 0.9, gaps


@pytest.mark.parametrize("knobs", THROTTLING)
async def test_throttling_is_retried_with_backoff_until_it_succeeds(
    canvas: SimulatedCanvas, knobs: Knobs
) -> None:
    seen = Seen()
    async with open_client(canvas, hook=seen, attempts=8, backoff_base=BACKOFF_BASE, rand=lambda: 1.0) as (
        client,
        _,
    ):
        answers = [await client.account() for _ in range(6)]

    assert [a["uuid"] for a in answers] == [canvas.account(ACCOUNT_ID).uuid] * 6
    throttled = str(knobs.throttle_status)
    assert throttled in seen.statuses
    assert seen.statuses.count("200") == 6
    assert seen.statuses == [str(r.status) for r in canvas.requests]
    assert len(set(seen.remaining)) > 1, seen.remaining  # X-Rate-Limit-Remaining moved
    assert 0.0 in seen.remaining  # ...down to an empty bucket
    assert_backed_off(canvas, knobs.throttle_status)


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
@pytest.mark.parametrize("knobs", THROTTLING)
async def test_a_throttled_post_is_retried_and_creates_one_import(
    canvas: SimulatedCanvas, knobs: Knobs, raw: bool
) -> None:
    """Canvas throttles before anything runs, so a throttled POST created nothing: retry it."""
    seen = Seen()
    async with open_client(canvas, hook=seen, attempts=8, backoff_base=BACKOFF_BASE, rand=lambda: 1.0) as (
        client,
        _,
    ):
        for _ in range(3):  # fill the bucket
            await client.account()
        answer = await client.create_sis_import(
            "1",
            USERS_CSV,
            filename="users.csv",
            params={"extension": "csv"},
            raw=raw,
            content_type="text/csv",
        )

    assert answer.status == 200
    posts = [r for r in canvas.requests if r.method == "POST"]
    assert posts[0].status == knobs.throttle_status
    assert posts[-1].status == 200
    assert posts[-1].file_bytes == USERS_CSV
    assert list(canvas.imports) == [int(answer.body["id"])]


async def test_a_post_that_cannot_connect_says_nothing_was_sent(canvas: SimulatedCanvas) -> None:
    """A refused connection is the one network failure that proves Canvas created nothing: the
    drop folder may POST that file again; after a timeout or a 5xx it may not."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # bound, never listening: connections are refused
        url = f"http://127.0.0.1:{closed.getsockname()[1]}"
        async with open_client(canvas, base_url=url) as (client, _):
            with pytest.raises(CanvasUnreachable) as raised:
                await client.create_sis_import("1", USERS_CSV, filename="users.csv", params={})

    assert raised.value.nothing_sent
    assert raised.value.retryable
    assert not CanvasError("a 502", status=502).nothing_sent


async def test_pagination_follows_link_headers_across_pages(canvas: SimulatedCanvas) -> None:
    created = [(await canvas.start_import(ACCOUNT_ID)).id for _ in range(5)]
    async with open_client(canvas) as (client, _):
        listed = await client.sis_imports("1", per_page=2)

    assert [int(i["id"]) for i in listed] == sorted(created, reverse=True)
    pages = [r for r in canvas.requests if r.path.endswith("/sis_imports")]
    assert [r.query.get("page") for r in pages] == [None, "2", "3"]
    assert {r.query.get("per_page") for r in pages} == {"2"}


class Elsewhere:
    """Two servers: a pass-through proxy to the simulated Canvas that points `Link` URLs at a second
    origin, and that second origin, which records whoever calls it."""

    def __init__(self, canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
        self.canvas, self.http = canvas, http
        self.hits: list[dict[str, str]] = []
        self.proxy_url = self.other_url = ""
        self._runners: list[web.AppRunner] = []

    async def _serve(self, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        self._runners.append(runner)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock).start()
        return f"http://127.0.0.1:{sock.getsockname()[1]}"

    async def _forward(self, request: web.Request) -> web.Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() in {"authorization", "accept"}}
        async with self.http.get(self.canvas.url + request.rel_url.path_qs, headers=headers) as answer:
            body = await answer.read()
            link = answer.headers.get("Link", "").replace(self.canvas.url, self.other_url)
            return web.Response(
                status=answer.status, body=body, content_type="application/json", headers={"Link": link}
            )

    async def _record(self, request: web.Request) -> web.Response:
        self.hits.append(dict(request.headers))
        return web.json_response({"sis_imports": []})

    async def __aenter__(self) -> Elsewhere:
        self.proxy_url = await self._serve(self._forward)
        self.other_url = await self._serve(self._record)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for runner in self._runners:
            await runner.cleanup()


async def test_a_next_link_to_another_origin_is_not_followed(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    for _ in range(3):
        await canvas.start_import(ACCOUNT_ID)
    async with (
        Elsewhere(canvas, http) as servers,
        open_client(canvas, base_url=servers.proxy_url) as (client, sent),
    ):
        with pytest.raises(CanvasError, match="another origin"):
            await client.sis_imports("1", per_page=2)

    assert servers.hits == []  # the token never went there
    assert [s.url.split("?")[0] for s in sent] == [servers.proxy_url + "/api/v1/accounts/1/sis_imports"]
