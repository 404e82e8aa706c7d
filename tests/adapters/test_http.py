"""`consumer.observability.http.make_app` through aiohttp's real test server on loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from consumer import __version__
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.errors import StoreUnavailable
from consumer.observability.http import Health, make_app
from consumer.observability.metrics import Metrics

Ping = Callable[[], Awaitable[None]]
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteStore]:
    async with open_sqlite(tmp_path / "state.db") as opened:
        yield opened


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def health() -> Health:
    return Health(stall_after=30)


async def unavailable_store() -> None:
    raise StoreUnavailable("sqlite: disk I/O error")


async def serve(registry: CollectorRegistry, health: Health, ping: Ping) -> Client:
    client: Client = TestClient(TestServer(make_app(registry, health, ping), host="127.0.0.1"))
    await client.start_server()
    return client


async def answer(registry: CollectorRegistry, health: Health, ping: Ping, path: str) -> tuple[int, str]:
    """Status and body of one GET of `path`, the store pinged by `ping`."""
    client = await serve(registry, health, ping)
    try:
        response = await client.get(path)
        return response.status, await response.text()
    finally:
        await client.close()


@pytest.fixture
async def client(registry: CollectorRegistry, health: Health, store: SqliteStore) -> AsyncIterator[Client]:
    served = await serve(registry, health, store.ping)
    yield served
    await served.close()


async def test_metrics_serves_the_registry(client: Client, registry: CollectorRegistry) -> None:
    metrics = Metrics(registry)
    metrics.messages.labels("deleted").inc(3)

    response = await client.get("/metrics")
    text = await response.text()

    assert response.status == 200
    assert response.content_type == "text/plain"
    assert 'sis_consumer_messages_total{outcome="deleted"} 3.0' in text
    assert f'sis_consumer_build_info{{version="{__version__}"}} 1.0' in text


async def test_livez_is_200_while_the_poll_loop_polls(client: Client, health: Health) -> None:
    health.polled()

    response = await client.get("/livez")

    assert response.status == 200


async def test_livez_is_503_with_a_reason_once_the_poll_loop_stalls(client: Client, health: Health) -> None:
    health.stall_after = 0.5
    health.last_poll = time.monotonic() - 60

    response = await client.get("/livez")

    assert response.status == 503
    assert "stalled" in await response.text()


async def test_livez_is_503_once_the_watchdog_stops_refreshing_while_the_store_answers(
    client: Client, health: Health
) -> None:
    """Its gauges are stale (stuck pages for finished imports, pages held open): ECS replaces it."""
    health.polled()
    health.last_refresh = time.monotonic() - 60

    response = await client.get("/livez")

    assert response.status == 503
    assert "watchdog stalled" in await response.text()


async def test_livez_stays_200_while_the_watchdog_waits_for_a_store_that_is_down(
    registry: CollectorRegistry, health: Health
) -> None:
    """Every replica waits for the store alike: replacing them all would not help (/readyz says it)."""
    health.polled()
    health.last_refresh = time.monotonic() - 60

    status, _ = await answer(registry, health, unavailable_store, "/livez")

    assert status == 200


async def test_readyz_is_503_naming_sqs_before_any_successful_sqs_call(client: Client) -> None:
    response = await client.get("/readyz")
    text = await response.text()

    assert response.status == 503
    assert text.startswith("sqs:")
    assert "store" not in text


async def test_readyz_names_the_last_sqs_error(client: Client, health: Health) -> None:
    health.sqs_result(None)
    health.sqs_result("ReceiveMessage: AccessDenied")

    response = await client.get("/readyz")

    assert response.status == 503
    assert "AccessDenied" in await response.text()


async def test_readyz_is_503_naming_the_store_when_its_ping_fails(
    registry: CollectorRegistry, health: Health
) -> None:
    health.sqs_result(None)

    status, text = await answer(registry, health, unavailable_store, "/readyz")

    assert status == 503
    assert text.startswith("store:")
    assert "disk I/O error" in text
    assert "sqs" not in text


async def test_readyz_is_200_when_sqs_and_the_store_are_fine(client: Client, health: Health) -> None:
    health.sqs_result(None)

    response = await client.get("/readyz")

    assert response.status == 200
