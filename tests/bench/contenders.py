"""The processes that drain the queue, each its own child process so its CPU and RSS are its own.

- `limit`: the bare aiobotocore loop (`bare_loop.py`), N pollers;
- `daemon`: the real `sis-consumer run`, N pollers, SQLite store in the run's temp dir;
- `boto3`: a plain sync boto3 loop with `json.loads` (`boto3_loop.py`), one thread;
- `sqs-consumer`: the Node library, `handleMessageBatch`, N consumers (`node/sqs_consumer.js`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from consumer.sandbox.local_sqs import Queues
from tests.bench import node
from tests.bench.corpus import Corpus
from tests.bench.fauxqs import client_env
from tests.support.daemon import Daemon

FINISHED_METRIC = "canvas_sis_imports_finished_total"
MESSAGES_METRIC = "sis_consumer_messages_total"


class Running(Protocol):
    @property
    def pid(self) -> int: ...

    def exited(self) -> int | None:
        """The exit code, or None while it runs."""
        ...

    def verify(self, corpus: Corpus) -> list[str]:
        """Once the queue is empty: what is wrong with what the contender did (empty: nothing)."""
        ...

    def stop(self) -> dict[str, Any]:
        """Stop it; returns what it reports about itself."""
        ...


@dataclass(frozen=True, slots=True)
class Contender:
    name: str
    description: str
    start: Callable[[Queues, int, Path], Running]


class Script:
    """A contender script: prints one JSON summary line on SIGTERM."""

    def __init__(self, argv: list[str], queues: Queues, log_path: Path, cwd: Path | None = None) -> None:
        self.log_path = log_path
        with log_path.open("ab") as log:
            self.process = subprocess.Popen(
                argv,
                env={**os.environ, **client_env(queues)},
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=cwd,
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> int | None:
        return self.process.poll()

    def verify(self, corpus: Corpus) -> list[str]:
        return []

    def stop(self) -> dict[str, Any]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            out, _ = self.process.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            out, _ = self.process.communicate()
        lines = out.decode(errors="replace").strip().splitlines()
        try:
            summary: dict[str, Any] = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            summary = {"output": lines[-5:]}
        return summary


class BenchDaemon(Daemon):
    """The e2e tests' daemon, spawned without waiting for /readyz: the queue is already full, so
    it drains from its first poll and the harness must watch it from the start."""

    def spawn(self) -> BenchDaemon:
        super().spawn()
        return self

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def exited(self) -> int | None:
        assert self.process is not None
        return self.process.poll()

    def verify(self, corpus: Corpus) -> list[str]:
        """Every message counted as deleted, every import in its final state, nothing invalid."""
        problems: list[str] = []
        deadline = time.monotonic() + 15
        while (deleted := self.sample(MESSAGES_METRIC, outcome="deleted")) < len(corpus.bodies):
            if time.monotonic() > deadline:
                problems.append(
                    f"{MESSAGES_METRIC}{{outcome=deleted}} is {deleted:g}, not {len(corpus.bodies)}"
                )
                break
            time.sleep(0.05)
        finished = self.sample(FINISHED_METRIC)
        if finished != corpus.imports:
            problems.append(f"{FINISHED_METRIC} sums to {finished:g}, not {corpus.imports}")
        for outcome in ("retried", "dead_lettered"):
            if n := self.sample(MESSAGES_METRIC, outcome=outcome):
                problems.append(f"{n:g} messages {outcome}")
        records = {(r["account"], int(r["sis_batch_id"])): r["state"] for r in self.imports()}
        wrong = {k: (records.get(k), v) for k, v in corpus.finals.items() if records.get(k) != v}
        if wrong:
            problems.append(
                f"{len(wrong)} imports not in their final state, e.g. {next(iter(wrong.items()))}"
            )
        if len(records) != corpus.imports:
            problems.append(f"the store knows {len(records)} imports, not {corpus.imports}")
        return problems

    def stop_quickly(self) -> int:
        """SIGTERM (stop polling, finish in-flight long polls), then the daemon's own forced exit."""
        assert self.process is not None
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                return self.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGTERM)  # the second signal: the daemon cancels its long polls
        try:
            return self.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
            return -9


class DaemonRun:
    def __init__(self, queues: Queues, pollers: int, workdir: Path, **overrides: str) -> None:
        env = {
            "SIS_CONSUMER_POLLERS": str(pollers),
            # Production defaults, where the e2e harness shortens them.
            "SIS_CONSUMER_WAIT_TIME_SECONDS": "20",
            "SIS_CONSUMER_GAUGE_INTERVAL": "5",
            "SIS_CONSUMER_LOG_LEVEL": "info",
            "SIS_CONSUMER_LOG_FORMAT": "json",
            **overrides,
        }
        self.daemon = BenchDaemon(queues, workdir, **env).spawn()

    @property
    def pid(self) -> int:
        return self.daemon.pid

    def exited(self) -> int | None:
        return self.daemon.exited()

    def verify(self, corpus: Corpus) -> list[str]:
        return self.daemon.verify(corpus)

    def stop(self) -> dict[str, Any]:
        code = self.daemon.stop_quickly()
        self.daemon.close()
        return {"exit_code": code, "log": str(self.daemon.log_path)}


def ready_daemon(queues: Queues, workdir: Path, pollers: int) -> BenchDaemon:
    """A daemon on an empty queue, ready, for the latency and soak runs."""
    daemon = BenchDaemon(
        queues,
        workdir,
        SIS_CONSUMER_POLLERS=str(pollers),
        SIS_CONSUMER_WAIT_TIME_SECONDS="20",
        SIS_CONSUMER_GAUGE_INTERVAL="5",
    )
    try:
        daemon.start()
    except BaseException:
        daemon.close()
        raise
    return daemon


def _limit(queues: Queues, pollers: int, workdir: Path) -> Running:
    argv = [sys.executable, "-m", "tests.bench.bare_loop", queues.queue_url, "--pollers", str(pollers)]
    return Script(argv, queues, workdir / "limit.log", cwd=_repo())


def _boto3(queues: Queues, pollers: int, workdir: Path) -> Running:
    argv = [sys.executable, "-m", "tests.bench.boto3_loop", queues.queue_url]
    return Script(argv, queues, workdir / "boto3.log", cwd=_repo())


def _daemon(queues: Queues, pollers: int, workdir: Path) -> Running:
    return DaemonRun(queues, pollers, workdir)


def _sqs_consumer(queues: Queues, pollers: int, workdir: Path) -> Running:
    home = node.ensure_installed()
    argv = [node.node(), str(home / "sqs_consumer.js"), queues.queue_url, str(pollers)]
    return Script(argv, queues, workdir / "sqs-consumer.log", cwd=home)


def _repo() -> Path:
    return node.BENCH_DIR.parent.parent


CONTENDERS = {
    c.name: c
    for c in (
        Contender("limit", "bare aiobotocore loop: receive 10 + batch delete, body unread", _limit),
        Contender("daemon", "sis-consumer run (decode, SQLite, metrics, logs, batch delete)", _daemon),
        Contender("boto3", "sync boto3 loop, 1 thread: receive 10, json.loads, batch delete", _boto3),
        Contender("sqs-consumer", "Node sqs-consumer 14.2.8, handleMessageBatch, JSON.parse", _sqs_consumer),
    )
}
NODE_CONTENDERS = frozenset({"sqs-consumer"})
