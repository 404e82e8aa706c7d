"""The whole sandbox in one block: local SQS, the publisher, and the simulated Canvas, wired.

    async with Sandbox(knobs=Knobs.demo()) as sandbox:
        env = sandbox.env()      # what `sis-consumer run` needs to reach both
        ...

Used by `sis-consumer demo` and by tests that want everything at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from consumer.sandbox.accounts import Account
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import LocalSqs, Queues
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsPublisher


class Sandbox:
    def __init__(
        self,
        accounts: Iterable[Account] | None = None,
        knobs: Knobs | None = None,
        *,
        sqs: LocalSqs | None = None,
        canvas_port: int = 0,
    ) -> None:
        """`sqs`: an already running LocalSqs to create the queues on (else one is started)."""
        self._accounts = accounts
        self._knobs = knobs
        self._given_sqs = sqs
        self._canvas_port = canvas_port
        self._stack = contextlib.AsyncExitStack()
        self._queues: Queues | None = None
        self._canvas: SimulatedCanvas | None = None
        self._sqs: LocalSqs | None = sqs

    @property
    def queues(self) -> Queues:
        if self._queues is None:
            raise RuntimeError("use `async with` first")
        return self._queues

    @property
    def local_sqs(self) -> LocalSqs:
        """The moto server behind the queues (it keeps S3 buckets too: `create_drop_folder`)."""
        if self._sqs is None:
            raise RuntimeError("use `async with` first")
        return self._sqs

    @property
    def canvas(self) -> SimulatedCanvas:
        if self._canvas is None:
            raise RuntimeError("use `async with` first")
        return self._canvas

    async def __aenter__(self) -> Self:
        try:
            sqs = self._given_sqs
            if sqs is None:
                sqs = self._sqs = LocalSqs()
                # moto's server starts a thread and blocks briefly: keep the loop free.
                await asyncio.to_thread(sqs.__enter__)
                self._stack.push(sqs.__exit__)
            self._queues = await asyncio.to_thread(sqs.create_queues)
            publisher = await self._stack.enter_async_context(SqsPublisher(self._queues))
            self._canvas = await self._stack.enter_async_context(
                SimulatedCanvas(self._accounts, self._knobs, publisher, port=self._canvas_port)
            )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    def env(self, account_id: int | None = None) -> dict[str, str]:
        """Environment for `sis-consumer run`: the queues, and Canvas with one root account's token."""
        canvas = self.canvas
        root = account_id if account_id is not None else min(canvas.tokens)
        return {
            **self.queues.env(),
            "SIS_CONSUMER_CANVAS_URL": canvas.url,
            "SIS_CONSUMER_CANVAS_TOKEN": canvas.tokens[root],
        }
