"""The Canvas client against the simulated Canvas having a bad day: every fault is a `CanvasError`
the callers know how to handle, never a stray exception."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.config import Secret
from consumer.errors import CanvasUnauthorized, CanvasUnavailable
from consumer.sandbox.faults import Fault
from consumer.sandbox.simulated_canvas import SimulatedCanvas


@pytest.fixture
async def canvas() -> AsyncIterator[SimulatedCanvas]:
    async with SimulatedCanvas() as sim:
        yield sim


@pytest.fixture
async def client(canvas: SimulatedCanvas) -> AsyncIterator[CanvasClient]:
    async with open_canvas(
        canvas.url, Secret(canvas.tokens[1]), request_seconds=0.5, attempts=2, backoff_base=0.01
    ) as opened:
        yield opened


@pytest.mark.parametrize(
    ("fault", "status"), [("error_page", "503"), ("bad_bytes", "502"), ("hang", "TimeoutError")]
)
async def test_an_outage_is_canvas_unavailable_and_retried(
    canvas: SimulatedCanvas, client: CanvasClient, fault: Fault, status: str
) -> None:
    canvas.faults.start(fault)

    with pytest.raises(CanvasUnavailable, match=status):
        await client.account("self")

    assert canvas.faults.answered == 2  # the first try and its retry


async def test_a_revoked_token_is_canvas_unauthorized_and_not_retried(
    canvas: SimulatedCanvas, client: CanvasClient
) -> None:
    canvas.faults.start("unauthorized")

    with pytest.raises(CanvasUnauthorized, match="Invalid access token"):
        await client.account("self")

    assert canvas.faults.answered == 1


async def test_after_the_outage_the_same_client_works(canvas: SimulatedCanvas, client: CanvasClient) -> None:
    canvas.faults.start("bad_bytes")
    with pytest.raises(CanvasUnavailable):
        await client.account("self")
    canvas.faults.stop()

    account = await client.account("self")

    assert account["id"] == "1"
