"""The `rig` fixture of the worker and app-stop tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.worker_rig import Rig, open_rig


@pytest.fixture
async def rig(
    queues: Queues, local_sqs: LocalSqs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Rig]:
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    async with open_rig(queues, local_sqs, tmp_path) as opened:
        yield opened
