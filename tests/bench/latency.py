"""Event-to-metric latency at light load: from SendMessage of an import's finishing event to
`canvas_sis_imports_finished_total` having counted it on the daemon's /metrics.

A background thread keeps a steady trickle of other Live Events on the queue (`rate` messages per
second, the SIS events included). Imports go through their lifecycle one after the other; before the
terminal event is sent, the counter's current sum is read; after, /metrics is scraped every
`poll_interval` until it moves. The clock starts before the SendMessage call and stops when the
scrape that shows the increment has been read, so each latency is an upper bound that includes the
SendMessage round trip, fauxqs's long-poll wake-up and up to one poll interval plus one scrape.
"""

from __future__ import annotations

import http.client
import random
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench import corpus, measure
from tests.bench.contenders import FINISHED_METRIC, ready_daemon
from tests.bench.fauxqs import Fauxqs, SqsApi
from tests.support.live_events import sis_event

SIS_EVENTS_PER_IMPORT = 4


@dataclass(frozen=True, slots=True)
class LatencyResult:
    samples: list[float]
    rate: float
    """Messages per second actually sent, SIS events included."""
    poll_interval: float
    scrape_seconds: float
    """Median duration of one /metrics scrape, as the harness saw it."""
    daemon_cpu_seconds: float
    seconds: float

    def percentile(self, p: float) -> float:
        return measure.percentile(self.samples, p)

    def as_dict(self) -> dict[str, Any]:
        ms = sorted(round(s * 1000, 2) for s in self.samples)
        return {
            "imports": len(self.samples),
            "p50_ms": round(self.percentile(50) * 1000, 2),
            "p90_ms": round(self.percentile(90) * 1000, 2),
            "p99_ms": round(self.percentile(99) * 1000, 2),
            "max_ms": ms[-1] if ms else None,
            "load_messages_per_second": round(self.rate, 1),
            "poll_interval_ms": self.poll_interval * 1000,
            "scrape_ms_median": round(self.scrape_seconds * 1000, 2),
            "daemon_cpu_share": round(self.daemon_cpu_seconds / self.seconds, 3) if self.seconds else None,
            "samples_ms": ms,
        }


class _Scraper:
    """Keep-alive scrapes of the daemon's /metrics, reading one counter's sum."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.durations: list[float] = []

    def finished(self) -> float:
        began = time.perf_counter()
        self._conn.request("GET", "/metrics")
        text = self._conn.getresponse().read().decode()
        self.durations.append(time.perf_counter() - began)
        prefix = FINISHED_METRIC + "{"
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))

    def close(self) -> None:
        self._conn.close()


class _Background(threading.Thread):
    """Other Live Events at a steady pace, on its own connection."""

    def __init__(self, port: int, queue_url: str, rate: float) -> None:
        super().__init__(name="background-load", daemon=True)
        self._api = SqsApi(port)
        self._queue_url = queue_url
        self._rate = rate
        self._halt = threading.Event()
        self.sent = 0

    def run(self) -> None:
        stream = corpus.other_stream(seed=99)
        start = time.monotonic()
        while not self._halt.is_set():
            self._api.send(self._queue_url, next(stream))
            self.sent += 1
            self._halt.wait(max(0.0, start + self.sent / self._rate - time.monotonic()))
        self._api.close()

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def run(
    pollers: int, workroot: Path, *, imports: int = 100, rate: float = 20.0, poll_interval: float = 0.005
) -> LatencyResult:
    workdir = Path(tempfile.mkdtemp(prefix="latency-", dir=workroot))
    rng = random.Random(5)
    cycle = SIS_EVENTS_PER_IMPORT / (rate / 2)  # half of the load is SIS events, half background
    with Fauxqs(workdir) as sqs:
        queues = sqs.create_queues()
        daemon = ready_daemon(queues, workdir, pollers)
        try:
            scraper = _Scraper(daemon.port)
            background = _Background(sqs.port, queues.queue_url, rate / 2)
            background.start()
            api = sqs.api
            samples: list[float] = []
            began, cpu_before = time.monotonic(), measure.cpu_seconds(daemon.pid)
            at = datetime.now(UTC) - timedelta(minutes=30)
            for i in range(imports):
                cycle_start = time.monotonic()
                uuid_, account_id = corpus.ACCOUNTS[i % len(corpus.ACCOUNTS)]
                states = ["initializing", "created", "importing", "imported"]
                bodies = [
                    sis_event(
                        account_uuid=uuid_,
                        account_id=account_id,
                        sis_batch_id=90_000 + i,
                        state=state,
                        at=at + timedelta(seconds=k * 20 + i),
                    )
                    for k, state in enumerate(states)
                ]
                for body in bodies[:-1]:
                    api.send(queues.queue_url, body)
                    time.sleep(cycle / SIS_EVENTS_PER_IMPORT)
                before = scraper.finished()
                sent_at = time.perf_counter()
                api.send(queues.queue_url, bodies[-1])
                deadline = sent_at + 10
                while scraper.finished() <= before:
                    if time.perf_counter() > deadline:
                        raise TimeoutError(f"import {i}: not counted as finished within 10 s")
                    time.sleep(poll_interval)
                samples.append(time.perf_counter() - sent_at)
                time.sleep(max(0.0, cycle_start + cycle * rng.uniform(0.9, 1.1) - time.monotonic()))
            seconds = time.monotonic() - began
            cpu = measure.cpu_seconds(daemon.pid) - cpu_before
            background.stop()
            scraper.close()
        finally:
            daemon.stop_quickly()
            daemon.close()
    total_sent = background.sent + imports * SIS_EVENTS_PER_IMPORT
    durations = sorted(scraper.durations)
    return LatencyResult(
        samples=samples,
        rate=total_sent / seconds,
        poll_interval=poll_interval,
        scrape_seconds=durations[len(durations) // 2] if durations else float("nan"),
        daemon_cpu_seconds=cpu,
        seconds=seconds,
    )
