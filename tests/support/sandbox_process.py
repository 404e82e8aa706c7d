"""The real `sis-consumer sandbox --json`, started as a user would, for tests that drive it."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from consumer.sandbox.local_sqs import Queues
from tests.support.cli import SIS_CONSUMER
from tests.support.clients import Target


@dataclass(frozen=True, slots=True)
class RunningSandbox:
    process: subprocess.Popen[str]
    described: dict[str, Any]

    @property
    def account(self) -> dict[str, Any]:
        first: dict[str, Any] = self.described["accounts"][0]
        return first

    @property
    def target(self) -> Target:
        return Target(self.described["canvas_url"], self.account["id"], self.account["token"])

    @property
    def queues(self) -> Queues:
        d = self.described
        return Queues(d["sqs_endpoint"], d["queue_url"], d["dlq_url"], d["region"])


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"sis-consumer sandbox exited with {process.returncode}")
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            return process.stdout.readline()
    raise AssertionError(f"no line from sis-consumer sandbox within {timeout}s")


@contextmanager
def running_sandbox(workdir: Path, fates: str, time_scale: str = "0.2") -> Iterator[RunningSandbox]:
    """`sis-consumer sandbox --json --fates FATES`, stopped with SIGTERM (and checked to exit 0)."""
    stderr = (workdir / "sandbox.err").open("w")
    process = subprocess.Popen(
        [SIS_CONSUMER, "sandbox", "--json", "--fates", fates, "--time-scale", time_scale],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        cwd=workdir,
    )
    try:
        yield RunningSandbox(process, json.loads(_first_line(process, timeout=30)))
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        stderr.close()
