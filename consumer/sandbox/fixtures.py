"""Reusable pytest fixtures: moto SQS + the simulated Canvas publishing to it, and a queue reader.

Import the ones you need into a conftest.py:

    from consumer.sandbox.fixtures import canvas, canvas_accounts, http, inbox, knobs, sqs_publisher

`canvas` needs a `queues` fixture (a fresh `Queues` per test); `tests/conftest.py` has one over a
session-scoped `local_sqs`, and this module has the same two for test trees that lack them.
Override `knobs` (or `canvas_accounts`) per test with `@pytest.mark.parametrize("knobs", [Knobs(...)])`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from consumer.sandbox.accounts import Account, default_accounts
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import LocalSqs, Queues
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from consumer.sandbox.sqs_io import SqsInbox, SqsPublisher


@pytest.fixture(scope="session")
def local_sqs() -> Iterator[LocalSqs]:
    with LocalSqs() as sqs:
        yield sqs


@pytest.fixture
def queues(local_sqs: LocalSqs) -> Queues:
    return local_sqs.create_queues()


@pytest.fixture
def knobs() -> Knobs:
    return Knobs()


@pytest.fixture
def canvas_accounts() -> tuple[Account, ...]:
    return default_accounts()


@pytest.fixture
async def sqs_publisher(queues: Queues) -> AsyncIterator[SqsPublisher]:
    async with SqsPublisher(queues) as publisher:
        yield publisher


@pytest.fixture
async def canvas(
    canvas_accounts: tuple[Account, ...], knobs: Knobs, sqs_publisher: SqsPublisher
) -> AsyncIterator[SimulatedCanvas]:
    """A simulated Canvas whose Live Events go to `queues.queue_url`."""
    async with SimulatedCanvas(canvas_accounts, knobs, sqs_publisher) as sim:
        yield sim


@pytest.fixture
async def inbox(queues: Queues) -> AsyncIterator[SqsInbox]:
    """Reads (and deletes) what reached the Live Events queue."""
    async with SqsInbox(queues) as reader:
        yield reader


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
