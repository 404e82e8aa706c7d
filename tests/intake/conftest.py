"""Fixtures of the drop-folder tests: moto's S3 (the session's SQS server) and the simulated Canvas."""

from __future__ import annotations

import pytest

from consumer.sandbox.local_sqs import DropFolder, LocalSqs
from tests.submit.conftest import canvas_thread

__all__ = ["canvas_thread"]

TERM = "sis_term_id:2026FA"
"""A term of the simulated Canvas's first root account."""
MAX_BYTES = 2048
RULES = f"""
[[rules]]
prefix = "nightly/"
max_size = {MAX_BYTES}

[rules.options]
batch_mode = true
batch_mode_term_id = "{TERM}"
change_threshold = 10
"""


@pytest.fixture
def drop_folder(local_sqs: LocalSqs) -> DropFolder:
    """A versioned bucket notifying uploads under `nightly/` to a fresh intake queue."""
    return local_sqs.create_drop_folder("nightly/")
