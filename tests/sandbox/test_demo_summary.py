"""The demo's summary of what the daemon knows is printed again only when it changed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from consumer.adapters.store_sqlite import open_sqlite
from consumer.commands.demo import summary
from consumer.core.tracker import State
from consumer.sandbox.waiting import wait_until
from tests.support.records import NOW, obs

HEADER = "what the daemon knows"


async def test_the_summary_is_printed_once_per_change(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "demo.db"
    printed = ""

    def output() -> str:
        nonlocal printed
        printed += capsys.readouterr().out
        return printed

    async with open_sqlite(db) as store:
        task = asyncio.create_task(summary(db, every=0.001))
        try:
            await wait_until(lambda: HEADER in output(), timeout=5, what="the first summary")
            await store.apply(obs(State.CREATED, 0), NOW)
            await wait_until(lambda: "1 created" in output(), timeout=5, what="the next")
            await store.apply(obs(State.IMPORTING, 1), NOW)
            await wait_until(lambda: "1 importing" in output(), timeout=5, what="the next")
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    assert output().count(HEADER) == 3
