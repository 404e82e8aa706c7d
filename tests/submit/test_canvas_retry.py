"""`CanvasClient`'s rule for server errors: a 5xx says nothing about whether the request ran.

A GET is safe to repeat, so it is retried with backoff. A POST is not: Canvas may have created the
import before the answer was lost, and a retry would start a second SIS import of the same file.
The faults come from a proxy in front of the simulated Canvas (`tests.support.faults`).
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.config import Secret
from consumer.errors import CanvasUnavailable
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.faults import Fault, FaultyCanvas
from tests.support.sis_files import ACCOUNT_ID, USERS_CSV

ATTEMPTS = 4
BACKOFF_BASE = 0.05
SERVER_ERRORS = [500, 502, 503, 504]


@pytest.fixture
async def proxy(canvas: SimulatedCanvas) -> AsyncIterator[FaultyCanvas]:
    faulty = FaultyCanvas(canvas.url)
    async with faulty:
        yield faulty


@pytest.fixture
async def client(canvas: SimulatedCanvas, proxy: FaultyCanvas) -> AsyncIterator[CanvasClient]:
    """A client of account 1 through the proxy; `rand=1.0` makes every backoff its full step."""
    token = Secret(canvas.tokens[ACCOUNT_ID])
    async with open_canvas(
        proxy.url, token, attempts=ATTEMPTS, backoff_base=BACKOFF_BASE, rand=lambda: 1.0
    ) as opened:
        yield opened


def create(client: CanvasClient, raw: bool) -> Awaitable[Any]:
    return client.create_sis_import(
        "1", USERS_CSV, filename="users.csv", params={"extension": "csv"}, raw=raw, content_type="text/csv"
    )


@pytest.mark.parametrize("status", SERVER_ERRORS)
@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
async def test_a_post_answered_5xx_after_canvas_created_the_import_is_not_retried(
    canvas: SimulatedCanvas, proxy: FaultyCanvas, client: CanvasClient, raw: bool, status: int
) -> None:
    """The duplicate-import case: Canvas ran the POST, the answer that reached us was a 5xx."""
    proxy.inject(Fault("POST", r"/sis_imports$", status=status, after_canvas=True))

    with pytest.raises(CanvasUnavailable) as raised:
        await create(client, raw)

    assert raised.value.status == status
    assert proxy.statuses("POST", r"/sis_imports$") == [status]  # one attempt
    assert len(canvas.imports) == 1  # Canvas did create it: a retry would have made a second


@pytest.mark.parametrize("raw", [False, True], ids=["multipart", "raw"])
async def test_a_post_answered_5xx_before_reaching_canvas_is_not_retried_either(
    canvas: SimulatedCanvas, proxy: FaultyCanvas, client: CanvasClient, raw: bool
) -> None:
    """The client cannot tell the two cases apart, so the caller decides (`submit` records the error)."""
    proxy.inject(Fault("POST", r"/sis_imports$", status=503))

    with pytest.raises(CanvasUnavailable):
        await create(client, raw)

    assert proxy.statuses("POST", r"/sis_imports$") == [503]
    assert canvas.imports == {}


GETS = {
    "sis_import": (r"/sis_imports/\d+$", lambda c, batch: c.sis_import("1", batch)),
    "account": (r"/accounts/self$", lambda c, _: c.account()),
}
"""Every GET goes through the same `request`: one lookup of an import, and the account lookup."""


@pytest.mark.parametrize("status", SERVER_ERRORS)
@pytest.mark.parametrize(("path", "call"), GETS.values(), ids=GETS.keys())
async def test_a_get_answered_5xx_is_retried_with_backoff_until_it_succeeds(
    canvas: SimulatedCanvas,
    proxy: FaultyCanvas,
    client: CanvasClient,
    path: str,
    call: Callable[[CanvasClient, int], Awaitable[dict[str, Any]]],
    status: int,
) -> None:
    batch = (await canvas.start_import(ACCOUNT_ID)).id
    proxy.inject(Fault("GET", path, status=status, times=ATTEMPTS - 1))

    answer = await call(client, batch)

    assert answer["id"] in {str(batch), str(ACCOUNT_ID)}  # the import, or the account
    assert proxy.statuses("GET", path) == [status] * (ATTEMPTS - 1) + [200]
    # Each try waits the full backoff step (rand=1.0) before it goes out: base, 2 x base, 4 x base.
    arrivals = [a.at for a in proxy.answered]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    steps = [BACKOFF_BASE * 2**n for n in range(ATTEMPTS - 1)]
    assert all(gap >= step for gap, step in zip(gaps, steps, strict=True)), (gaps, steps)


async def test_a_get_that_keeps_failing_gives_up_after_its_attempts(
    canvas: SimulatedCanvas, proxy: FaultyCanvas, client: CanvasClient
) -> None:
    batch = (await canvas.start_import(ACCOUNT_ID)).id
    proxy.inject(Fault("GET", r"/sis_imports/\d+$", status=502, times=ATTEMPTS * 10))

    with pytest.raises(CanvasUnavailable) as raised:
        await client.sis_import("1", batch)

    assert raised.value.status == 502
    assert proxy.statuses("GET", r"/sis_imports/\d+$") == [502] * ATTEMPTS
