"""The real `sis-consumer` process, started and inspected the way an operator would."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from consumer.sandbox.local_sqs import Queues, free_port
from tests.waiting import wait_until

SIS_CONSUMER = str(Path(sys.executable).with_name("sis-consumer"))


class Daemon:
    def __init__(self, queues: Queues, workdir: Path, **overrides: str) -> None:
        self.workdir = workdir
        self.db = workdir / "state.db"
        self.port = free_port()
        self.log_path = workdir / f"daemon-{self.port}.log"
        self.env = {
            **os.environ,
            **queues.env(),
            "SIS_CONSUMER_STORE": f"sqlite:///{self.db}",
            "SIS_CONSUMER_METRICS_ADDR": f"127.0.0.1:{self.port}",
            "SIS_CONSUMER_WAIT_TIME_SECONDS": "2",
            "SIS_CONSUMER_POLLERS": "4",
            "SIS_CONSUMER_GAUGE_INTERVAL": "0.5",
            **overrides,
        }
        self.process: subprocess.Popen[bytes] | None = None

    def successor(self) -> Daemon:
        """The next deploy: a new process with the same settings, store and port (start it once
        this one has stopped)."""
        following = copy.copy(self)
        following.process = None
        return following

    def spawn(self) -> Daemon:
        """Start the process without waiting for it to be ready."""
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [SIS_CONSUMER, "run"], env=self.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=self.workdir
        )
        return self

    def start(self) -> Daemon:
        self.spawn()
        wait_until(self._ready, timeout=20, what="the daemon's /readyz")
        return self

    def _ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"daemon exited with {self.process.returncode}:\n{self.output()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, ConnectionError):
            return False

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait(self, timeout: float = 40) -> int:
        assert self.process is not None
        code = self.process.wait(timeout=timeout)
        self._log.close()
        return code

    def stop(self) -> int:
        self.signal(signal.SIGTERM)
        return self.wait()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.wait()

    def close(self) -> None:
        """Never leave a daemon behind, whatever the test did."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        if self.process is not None and not self._log.closed:
            self._log.close()

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def log_lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.output().splitlines() if line.startswith("{")]

    def metrics(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as response:
            text = response.read().decode()
        return {
            (s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def sample(self, name: str, **labels: str) -> float:
        """The sum of every sample of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.metrics().items() if n == name and wanted <= ls)

    def imports(self) -> list[dict[str, Any]]:
        done = subprocess.run(
            [SIS_CONSUMER, "imports", "--json"],
            env=self.env,
            capture_output=True,
            check=True,
            cwd=self.workdir,
        )
        result: list[dict[str, Any]] = json.loads(done.stdout)
        return result
