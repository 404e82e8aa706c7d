"""`sis-consumer demo` (what `make run` starts) shows the daemon working within a minute."""

from __future__ import annotations

import os
import signal
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from consumer.sandbox.local_sqs import free_port
from tests.support.cli import SIS_CONSUMER
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e


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


def test_demo_shows_finished_imports_within_a_minute_and_stops_cleanly(tmp_path: Path) -> None:
    """Ours, the Canvas UI's, and one that arrived through the drop folder, tagged with its outcome."""
    port = free_port()
    env = {**os.environ, "SIS_CONSUMER_METRICS_ADDR": f"127.0.0.1:{port}"}
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [SIS_CONSUMER, "demo"], env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path
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

        wait_until(two_states_and_durations, timeout=60, interval=1, what="two finished states and durations")

        def dropped_file_imported_and_tagged() -> bool:
            text = (tmp_path / "demo.log").read_text()
            return "/nightly/users.csv -> import" in text and "imported, tagged imported" in text

        wait_until(dropped_file_imported_and_tagged, timeout=60, interval=1, what="the drop folder's import")
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=30) == 0
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert f"http://127.0.0.1:{port}/metrics" in output
    assert "Traceback" not in output
    assert "daemon.stopped" in output
    assert "intake.refused" in output  # the empty file dropped after it
