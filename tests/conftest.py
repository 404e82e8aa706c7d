"""Fixtures shared by every test: a real SQS endpoint and a DynamoDB endpoint (moto's HTTP server) on
loopback, one each per session, and a fresh Live Events queue + DLQ per test (from the sandbox's
reusable fixtures)."""

from collections.abc import Iterator

import pytest

from consumer.sandbox.fixtures import local_sqs, queues
from tests.support.dynamodb import LocalDynamoDB

__all__ = ["local_sqs", "queues"]


@pytest.fixture(scope="session")
def local_dynamodb() -> Iterator[LocalDynamoDB]:
    with LocalDynamoDB() as server:
        yield server
