"""Fixtures shared by every test: a real SQS endpoint (moto's HTTP server) on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from consumer.sandbox.local_sqs import LocalSqs, Queues


@pytest.fixture(scope="session")
def local_sqs() -> Iterator[LocalSqs]:
    with LocalSqs() as sqs:
        yield sqs


@pytest.fixture
def queues(local_sqs: LocalSqs) -> Queues:
    """A fresh Live Events queue and DLQ for one test."""
    return local_sqs.create_queues()
