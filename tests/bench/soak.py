"""Soak: one daemon drains `total` messages in chunks; its RSS is read after each chunk.

Each chunk is a fresh corpus (new imports, new batch ids) preloaded once the previous one is
drained, so the store keeps growing while the label sets stay bounded (two accounts). Memory should
be flat: the daemon holds no per-message or per-import state beyond bounded caches.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.bench import corpus, measure
from tests.bench.contenders import FINISHED_METRIC, MESSAGES_METRIC, ready_daemon
from tests.bench.fauxqs import Fauxqs
from tests.support.waiting import wait_until


@dataclass(frozen=True, slots=True)
class Point:
    messages: int
    rss_bytes: int
    peak_rss_bytes: int
    seconds: float
    """Since the daemon started."""


@dataclass(frozen=True, slots=True)
class SoakResult:
    points: list[Point]
    imports: int
    finished_counted: float
    store_bytes: int
    seconds: float

    def rss_at(self, messages: int) -> int:
        """RSS after the first chunk that reached `messages`."""
        return next((p.rss_bytes for p in self.points if p.messages >= messages), self.points[-1].rss_bytes)

    def as_dict(self) -> dict[str, Any]:
        first, last = self.points[0], self.points[-1]
        return {
            "messages": last.messages,
            "imports": self.imports,
            "finished_counted": self.finished_counted,
            "rss_mb_first_chunk": round(first.rss_bytes / 2**20, 1),
            "rss_mb_end": round(last.rss_bytes / 2**20, 1),
            "rss_growth_mb": round((last.rss_bytes - first.rss_bytes) / 2**20, 1),
            "peak_rss_mb": round(max(p.peak_rss_bytes for p in self.points) / 2**20, 1),
            "store_mb": round(self.store_bytes / 2**20, 1),
            "seconds": round(self.seconds, 1),
            "points": [
                {
                    "messages": p.messages,
                    "rss_mb": round(p.rss_bytes / 2**20, 1),
                    "seconds": round(p.seconds, 1),
                }
                for p in self.points
            ],
        }


def run(pollers: int, workroot: Path, *, total: int = 200_000, chunk: int = 20_000) -> SoakResult:
    workdir = Path(tempfile.mkdtemp(prefix="soak-", dir=workroot))
    points: list[Point] = []
    imports = 0
    with Fauxqs(workdir) as sqs:
        queues = sqs.create_queues()
        daemon = ready_daemon(queues, workdir, pollers)
        try:
            began = time.monotonic()
            sent = 0
            for k in range(max(1, total // chunk)):
                part = corpus.build(chunk, seed=1000 + k, first_batch_id=1_000_000 + k * 100_000)
                imports += part.imports
                sqs.api.send_all(queues.queue_url, part.bodies)
                sent += chunk
                wait_until(
                    lambda: daemon.sample(MESSAGES_METRIC, outcome="deleted") >= sent,  # noqa: B023
                    timeout=300,
                    interval=0.1,
                    what=f"the daemon to delete {sent} messages",
                )
                rss, peak = measure.memory(daemon.pid)
                points.append(Point(sent, rss, peak, time.monotonic() - began))
                print(f"bench: soak {sent:>7} messages, RSS {rss / 2**20:.1f} MB", flush=True)
            finished = daemon.sample(FINISHED_METRIC)
            seconds = time.monotonic() - began
        finally:
            daemon.stop_quickly()
            daemon.close()
    store = sum(p.stat().st_size for p in workdir.glob("state.db*"))
    return SoakResult(points, imports, finished, store, seconds)
