"""What a child process has cost so far, read from /proc: CPU seconds (user+sys, all threads), RSS.

Only the process itself is counted, never the endpoint it talks to. `/proc/<pid>/stat` counts every
thread of the process (the SQLite thread, Node's libuv pool) and nothing of other processes.
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
"""utime/stime are in these ticks (usually 100 per second: 10 ms resolution)."""


@dataclass(frozen=True, slots=True)
class Usage:
    cpu_seconds: float
    rss_bytes: int
    peak_rss_bytes: int


def cpu_seconds(pid: int) -> float:
    """user + sys CPU of `pid` so far, every thread included."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        text = f.read()
    # The command name (field 2) may hold spaces and parentheses: split after its closing one.
    fields = text[text.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / CLOCK_TICKS


def memory(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) of `pid` in bytes: VmRSS and VmHWM of /proc/<pid>/status."""
    rss = peak = 0
    with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                peak = int(line.split()[1]) * 1024
    return rss, peak


def usage(pid: int) -> Usage:
    rss, peak = memory(pid)
    return Usage(cpu_seconds(pid), rss, peak)


@dataclass(frozen=True, slots=True)
class Spread:
    """The median of several runs, with the smallest and largest."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(values), min(values), max(values), len(values))

    def as_dict(self) -> dict[str, float | int]:
        return {"median": self.median, "min": self.low, "max": self.high, "n": self.n}


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0-100), nearest rank: an observed value, never an interpolation."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def load_average() -> tuple[float, float, float]:
    return os.getloadavg()
