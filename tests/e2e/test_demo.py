"""`sis-consumer demo` (what `make run` starts) shows the daemon working within a minute, in lines a
person can read, and leaves its store behind for `sis-consumer imports`.

One demo runs for the whole module (a minute of imports); each test reads what it did."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.sandbox.local_sqs import free_port
from tests.support.cli import SIS_CONSUMER
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

COLUMNS = 100
SUMMARY = "── sis-consumer demo: what the daemon knows"


@dataclass(frozen=True)
class DemoRun:
    workdir: Path
    port: int
    returncode: int
    output: str


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError):
        return {}
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """The demo, run until the drop folder's import is tagged, then stopped with Ctrl-C."""
    workdir = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {**os.environ, "SIS_CONSUMER_METRICS_ADDR": f"127.0.0.1:{port}", "COLUMNS": str(COLUMNS)}
    log_path = workdir / "demo.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [SIS_CONSUMER, "demo"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=workdir
        )
        try:

            def two_states_and_durations() -> bool:
                samples = scrape(port)
                states = {
                    labels["state"]
                    for labels, value in samples.get("canvas_sis_imports_finished_total", [])
                    if value > 0
                }
                durations = sum(v for _, v in samples.get("canvas_sis_import_duration_seconds_count", []))
                return len(states) >= 2 and durations > 0

            wait_until(two_states_and_durations, timeout=60, interval=1, what="two finished states")

            def dropped_file_imported_and_tagged() -> bool:
                text = log_path.read_text()
                return "nightly/users.csv -> import" in text and "imported, tagged imported" in text

            wait_until(
                dropped_file_imported_and_tagged, timeout=60, interval=1, what="the drop folder's import"
            )
            process.send_signal(signal.SIGINT)
            returncode = process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return DemoRun(workdir, port, returncode, log_path.read_text())


def test_demo_shows_finished_imports_within_a_minute_and_stops_cleanly(demo: DemoRun) -> None:
    """Ours, the Canvas UI's, and one that arrived through the drop folder, tagged with its outcome."""
    assert demo.returncode == 0
    assert f"http://127.0.0.1:{demo.port}/metrics" in demo.output
    assert "Traceback" not in demo.output
    assert "daemon.stopped" in demo.output
    assert "intake.refused" in demo.output  # the empty file dropped after it


def test_demo_prints_its_summary_again_only_when_it_changed(demo: DemoRun) -> None:
    lines = demo.output.splitlines()
    blocks = []
    for i, line in enumerate(lines):
        if line.startswith(SUMMARY):
            end = lines.index("", i)
            blocks.append(lines[i:end])

    assert len(blocks) >= 2
    assert all(before != after for before, after in itertools.pairwise(blocks))


def test_demo_lines_fit_the_terminal(demo: DemoRun) -> None:
    assert "sis_batch.applied" in demo.output
    too_long = [line for line in demo.output.splitlines() if len(line) > COLUMNS]
    assert too_long == []


def test_demo_keeps_its_store_for_sis_consumer_imports(demo: DemoRun) -> None:
    """The command the demo prints lists the imports it ran, after it stopped."""
    command = next(line for line in demo.output.splitlines() if line.startswith("The store stays:"))
    variable = command.split(": ", 1)[1].split()[0]
    name, value = variable.split("=", 1)
    env = {**os.environ, name: value}

    done = subprocess.run(
        [SIS_CONSUMER, "imports", "--json"], env=env, cwd=demo.workdir, capture_output=True, check=True
    )

    imports = json.loads(done.stdout)
    assert any(i["state"] == "imported" for i in imports)
