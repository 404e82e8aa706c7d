"""Talking to the simulated Canvas the way a client does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from consumer.sandbox.simulated_canvas import SimulatedCanvas

USERS_CSV = (
    b"user_id,login_id,first_name,last_name,status\nu1,ada,Ada,Lovelace,active\nu2,alan,Alan,Turing,active\n"
)
COURSES_CSV = b"course_id,short_name,long_name,term_id,status\nC1,C1,Course One,T1,active\n"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any


async def call(
    http: aiohttp.ClientSession,
    canvas: SimulatedCanvas,
    method: str,
    path: str,
    *,
    account_id: int | None = 1,
    headers: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Answer:
    sent = dict(canvas.headers(account_id)) if account_id is not None else {}
    sent.update(headers or {})
    async with http.request(method, canvas.url + path, headers=sent, **kwargs) as response:
        text = await response.text()
        is_json = response.content_type.startswith("application/json")
        body = await response.json(content_type=None) if is_json else text
        return Answer(response.status, dict(response.headers), body)


async def post_import(
    http: aiohttp.ClientSession,
    canvas: SimulatedCanvas,
    account_id: int | None = 1,
    *,
    query: str = "",
    fields: Mapping[str, str] | None = None,
    data: bytes = USERS_CSV,
    file_name: str = "users.csv",
    headers: Mapping[str, str] | None = None,
    target: str | None = None,
) -> Answer:
    """A multipart POST of `data` as `attachment`, like `curl -F attachment=@users.csv`."""
    form = aiohttp.FormData()
    for key, value in (fields or {}).items():
        form.add_field(key, value)
    form.add_field("attachment", data, filename=file_name, content_type="text/csv")
    path = f"/api/v1/accounts/{target or account_id}/sis_imports{query}"
    return await call(http, canvas, "POST", path, account_id=account_id, headers=headers, data=form)
