"""Fixtures of the drop-folder tests: moto's S3 (the session's SQS server); the simulated Canvas
comes from the plugins registered in tests/conftest.py."""

from __future__ import annotations

import pytest

from consumer.sandbox.local_sqs import DropFolder, LocalSqs


@pytest.fixture
def drop_folder(local_sqs: LocalSqs) -> DropFolder:
    """A versioned bucket notifying uploads under `nightly/` to a fresh intake queue."""
    return local_sqs.create_drop_folder("nightly/")
