"""Faults of the simulated Canvas: while one is on, every request gets it; then Canvas answers again."""

from __future__ import annotations

import aiohttp
import pytest

from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.sandbox_http import call

PATH = "/api/v1/accounts/self"


async def raw(http: aiohttp.ClientSession, canvas: SimulatedCanvas) -> tuple[int, bytes]:
    async with http.get(canvas.url + PATH, headers=canvas.headers(1)) as response:
        return response.status, await response.read()


async def test_an_error_page_is_a_503_in_html(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    canvas.faults.start("error_page")

    status, body = await raw(http, canvas)

    assert status == 503
    assert body.startswith(b"<html>")


async def test_bad_bytes_is_a_502_page_that_is_not_utf8(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.faults.start("bad_bytes")

    status, body = await raw(http, canvas)

    assert status == 502
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")


async def test_unauthorized_refuses_even_a_valid_token(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.faults.start("unauthorized")

    answer = await call(http, canvas, "GET", PATH)

    assert answer.status == 401
    assert answer.body == {"errors": [{"message": "Invalid access token."}]}


async def test_hang_keeps_the_request_waiting(canvas: SimulatedCanvas, http: aiohttp.ClientSession) -> None:
    canvas.faults.start("hang")

    with pytest.raises(TimeoutError):
        async with http.get(canvas.url + PATH, timeout=aiohttp.ClientTimeout(total=0.3)):
            pass


async def test_after_stop_canvas_answers_again_and_the_faulty_answers_were_counted(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.faults.start("error_page")
    await raw(http, canvas)
    canvas.faults.stop()

    answer = await call(http, canvas, "GET", PATH)

    assert answer.status == 200
    assert canvas.faults.answered == 1
    assert [r.status for r in canvas.requests] == [503, 200]


def test_an_unknown_fault_is_refused(canvas: SimulatedCanvas) -> None:
    with pytest.raises(ValueError, match="unknown fault"):
        canvas.faults.start("gremlins")  # type: ignore[arg-type]


async def test_a_fault_for_one_method_leaves_the_others_alone(
    canvas: SimulatedCanvas, http: aiohttp.ClientSession
) -> None:
    canvas.faults.start("error_page", method="POST")

    answer = await call(http, canvas, "GET", PATH)

    assert answer.status == 200
    assert canvas.faults.answered == 0
