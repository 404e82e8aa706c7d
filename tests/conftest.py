"""Fixtures shared by every test: a real SQS endpoint and a DynamoDB endpoint (moto's HTTP server) on
loopback, one each per session, and a fresh Live Events queue + DLQ per test.

The sandbox's reusable fixtures (`consumer.sandbox.fixtures`: `local_sqs`, `queues`, the simulated
Canvas and its knobs) and the daemon-with-Canvas fixtures (`tests.support.fixtures`) are plugins, so
every test package sees them without importing another package's conftest.
"""

from collections.abc import Iterator

import pytest

from tests.support.dynamodb import LocalDynamoDB

pytest_plugins = ["consumer.sandbox.fixtures", "tests.support.fixtures"]


@pytest.fixture(scope="session")
def local_dynamodb() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB() as server:
        yield server
