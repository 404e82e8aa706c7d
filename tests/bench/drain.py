"""One drain: a fresh fauxqs, the corpus preloaded, one contender started, watched until empty.

The clock and the CPU meter run only while the queue drains, as seen from the endpoint: from the
first sample where messages have left the queue to the first sample where it holds none, visible or
in flight (the sample interval is 20 ms; each end is taken at the midpoint between two samples).
The contender's start-up (imports, connections) is not charged; its peak RSS includes it.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench import measure
from tests.bench.contenders import Contender
from tests.bench.corpus import Corpus
from tests.bench.fauxqs import Fauxqs

INTERVAL = 0.02
STALL_TIMEOUT = 60.0
"""No message leaves the queue for this long: the run has failed."""


class DrainFailed(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class DrainRun:
    contender: str
    messages: int
    seconds: float
    cpu_seconds: float
    startup_cpu_seconds: float
    peak_rss_bytes: int
    endpoint_cpu_seconds: float
    preload_seconds: float
    problems: tuple[str, ...] = ()
    reported: dict[str, Any] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds

    @property
    def cpu_per_1k(self) -> float:
        """CPU seconds per 1,000 messages."""
        return self.cpu_seconds / self.messages * 1000

    @property
    def endpoint_cpu_per_1k(self) -> float:
        return self.endpoint_cpu_seconds / self.messages * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "contender": self.contender,
            "messages": self.messages,
            "seconds": round(self.seconds, 4),
            "messages_per_second": round(self.rate, 1),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cpu_seconds_per_1k": round(self.cpu_per_1k, 4),
            "startup_cpu_seconds": round(self.startup_cpu_seconds, 3),
            "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1),
            "endpoint_cpu_seconds_per_1k": round(self.endpoint_cpu_per_1k, 4),
            "preload_seconds": round(self.preload_seconds, 2),
            "problems": list(self.problems),
            "reported": self.reported,
        }


@dataclass(frozen=True, slots=True)
class _Sample:
    at: float
    cpu: float
    endpoint_cpu: float
    visible: int
    in_flight: int


def run(contender: Contender, corpus: Corpus, pollers: int, workroot: Path) -> DrainRun:
    workdir = Path(tempfile.mkdtemp(prefix=f"{contender.name}-", dir=workroot))
    n = len(corpus.bodies)
    with Fauxqs(workdir) as sqs:
        queues = sqs.create_queues()
        began = time.monotonic()
        sqs.api.send_all(queues.queue_url, corpus.bodies)
        preload = time.monotonic() - began
        if (depth := sqs.api.depth(queues.queue_url)) != (n, 0):
            raise DrainFailed(f"preloaded {n} messages, the queue holds {depth}")
        running = contender.start(queues, pollers, workdir)
        reported: dict[str, Any] = {}
        try:
            first, last = _watch(sqs, queues.queue_url, running.pid, n, running.exited)
            problems = running.verify(corpus)
            _, peak = measure.memory(running.pid)
        finally:
            reported = running.stop()
    before, start = first
    end_before, end = last
    return DrainRun(
        contender=contender.name,
        messages=n,
        seconds=(end.at + end_before.at) / 2 - (start.at + before.at) / 2,
        cpu_seconds=end.cpu - before.cpu,
        startup_cpu_seconds=before.cpu,
        peak_rss_bytes=peak,
        endpoint_cpu_seconds=end.endpoint_cpu - before.endpoint_cpu,
        preload_seconds=preload,
        problems=tuple(problems),
        reported=reported,
    )


def _watch(
    sqs: Fauxqs, queue_url: str, pid: int, n: int, exited: Callable[[], int | None]
) -> tuple[tuple[_Sample, _Sample], tuple[_Sample, _Sample]]:
    """Sample until the queue is empty: ((last full, first drained), (last non-empty, first empty))."""
    previous: _Sample | None = None
    first: tuple[_Sample, _Sample] | None = None
    progress_at = time.monotonic()
    remaining = n
    while True:
        now = time.monotonic()
        visible, in_flight = sqs.api.depth(queue_url)
        sample = _Sample(now, measure.cpu_seconds(pid), measure.cpu_seconds(sqs.pid), visible, in_flight)
        if first is None and visible < n:
            first = (previous or sample, sample)
        if first is not None and visible + in_flight == 0:
            return first, (previous or sample, sample)
        if visible + in_flight < remaining:
            remaining, progress_at = visible + in_flight, now
        elif now - progress_at > STALL_TIMEOUT:
            raise DrainFailed(f"no progress for {STALL_TIMEOUT}s: {visible} visible, {in_flight} in flight")
        if (code := exited()) is not None:
            raise DrainFailed(f"the contender exited with {code}: {visible} visible, {in_flight} in flight")
        previous = sample
        time.sleep(max(0.0, INTERVAL - (time.monotonic() - now)))
