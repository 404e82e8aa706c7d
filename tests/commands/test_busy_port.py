"""A metrics port that is already taken: one line naming SIS_CONSUMER_METRICS_ADDR, no traceback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from consumer.sandbox.local_sqs import Queues
from tests.support.cli import clean_env, run_cli


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_run_on_a_taken_metrics_port_says_so_in_one_line(
    queues: Queues, taken_port: int, tmp_path: Path
) -> None:
    env = clean_env(**queues.env(), SIS_CONSUMER_METRICS_ADDR=f"127.0.0.1:{taken_port}")

    run = run_cli("run", env=env, cwd=tmp_path)

    assert run.returncode == 1
    assert run.stderr.splitlines() == [
        f"sis-consumer: cannot listen on 127.0.0.1:{taken_port} for /metrics (Address already in use): "
        "set SIS_CONSUMER_METRICS_ADDR to a free host:port"
    ]


def test_demo_on_a_taken_metrics_port_says_so_in_one_line(taken_port: int, tmp_path: Path) -> None:
    run = run_cli("demo", env=clean_env(SIS_CONSUMER_METRICS_ADDR=f"127.0.0.1:{taken_port}"), cwd=tmp_path)

    assert run.returncode == 1
    assert "Traceback" not in run.output
    assert run.stderr.splitlines()[-1] == (
        f"sis-consumer: cannot listen on 127.0.0.1:{taken_port} for /metrics (Address already in use): "
        "set SIS_CONSUMER_METRICS_ADDR to a free host:port"
    )
