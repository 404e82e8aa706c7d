"""The readable table and the JSON file (tests/bench/results/latest.json) of one benchmark run."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.drain import DrainRun
from tests.bench.latency import LatencyResult
from tests.bench.measure import Spread
from tests.bench.micro import Case
from tests.bench.soak import SoakResult
from tests.bench.store_requests import StoreCost

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# Targets the daemon is reported against (measured and reported, never asserted).
THROUGHPUT_VS_LIMIT = 0.9
CPU_VS_LIMIT = 1.2
FAST_REJECT_PER_CORE = 100_000
P99_LATENCY_MS = 50.0
SOAK_RSS_MB = 100.0
STORE_REQUESTS_PER_SIS_EVENT = 2.0
STORE_REQUESTS_PER_OTHER_EVENT = 0.0
SOAK_GROWTH = 0.10
"""RSS after the whole soak may exceed RSS after the first chunk by this share at most."""


@dataclass(frozen=True, slots=True)
class Target:
    what: str
    value: str
    met: bool

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.what, "measured": self.value, "met": self.met}


@dataclass
class Results:
    meta: dict[str, Any]
    descriptions: dict[str, str] = field(default_factory=dict)
    drains: dict[str, list[DrainRun]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    latency: LatencyResult | None = None
    micro: list[Case] = field(default_factory=list)
    soak: SoakResult | None = None
    store: StoreCost | None = None

    def spread(self, contender: str, metric: str) -> Spread:
        runs = self.drains.get(contender, [])
        values = {
            "rate": [r.rate for r in runs],
            "cpu": [r.cpu_per_1k for r in runs],
            "rss": [r.peak_rss_bytes / 2**20 for r in runs],
            "endpoint_cpu": [r.endpoint_cpu_per_1k for r in runs],
        }[metric]
        return Spread.of(values)

    def ratios(self) -> dict[str, dict[str, float]]:
        """daemon / other, on medians: throughput (higher is better) and CPU per 1k (lower is better)."""
        if not self.drains.get("daemon"):
            return {}
        rate, cpu = self.spread("daemon", "rate").median, self.spread("daemon", "cpu").median
        out: dict[str, dict[str, float]] = {}
        for name, runs in self.drains.items():
            if name == "daemon" or not runs:
                continue
            out[f"daemon/{name}"] = {
                "throughput": rate / self.spread(name, "rate").median,
                "cpu_per_1k": cpu / self.spread(name, "cpu").median,
            }
        return out

    def targets(self) -> list[Target]:
        found: list[Target] = []
        ratios = self.ratios()
        if "daemon/limit" in ratios:
            t, c = ratios["daemon/limit"]["throughput"], ratios["daemon/limit"]["cpu_per_1k"]
            found.append(
                Target(
                    f"daemon throughput >= {THROUGHPUT_VS_LIMIT} x limit",
                    f"{t:.2f} x",
                    t >= THROUGHPUT_VS_LIMIT,
                )
            )
            found.append(Target(f"daemon CPU/1k <= {CPU_VS_LIMIT} x limit", f"{c:.2f} x", c <= CPU_VS_LIMIT))
        peers = {k: v for k, v in ratios.items() if k != "daemon/limit"}
        if peers:
            worst = min(v["throughput"] for v in peers.values())
            found.append(
                Target("daemon throughput above every peer", f"lowest ratio {worst:.2f} x", worst > 1)
            )
        reject = [c for c in self.micro if c.kind == "other" and c.name == "decode"]
        if reject:
            rate = reject[0].per_cpu_second
            found.append(
                Target(
                    f"fast reject >= {FAST_REJECT_PER_CORE:,} events/s/core",
                    f"{rate:,.0f}",
                    rate >= FAST_REJECT_PER_CORE,
                )
            )
        if self.latency is not None:
            p99 = self.latency.percentile(99) * 1000
            found.append(
                Target(f"p99 event-to-metric < {P99_LATENCY_MS:g} ms", f"{p99:.1f} ms", p99 < P99_LATENCY_MS)
            )
        if self.store is not None:
            later = self.store.by_kind.get("later event", [])
            common = sum(later) / max(1, len(later))
            found.append(
                Target(
                    f"DynamoDB requests per later SIS event of an import <= {STORE_REQUESTS_PER_SIS_EVENT:g}",
                    f"{common:.2f} (all SIS events: {self.store.per_sis_event:.2f})",
                    common <= STORE_REQUESTS_PER_SIS_EVENT,
                )
            )
            other = self.store.other_requests / max(1, self.store.other_messages)
            found.append(Target("DynamoDB requests per ignored Live Event = 0", f"{other:g}", other == 0))
        if self.soak is not None and self.soak.points:
            first, last = self.soak.points[0].rss_bytes / 2**20, self.soak.points[-1].rss_bytes / 2**20
            ok = max(first, last) < SOAK_RSS_MB and last <= first * (1 + SOAK_GROWTH)
            found.append(
                Target(
                    f"RSS < {SOAK_RSS_MB:g} MB, flat (<= +{SOAK_GROWTH:.0%}) from "
                    f"{self.soak.points[0].messages:,} to {self.soak.points[-1].messages:,} messages",
                    f"{first:.1f} -> {last:.1f} MB",
                    ok,
                )
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        drain: dict[str, Any] = {}
        for name, runs in self.drains.items():
            drain[name] = {
                "description": self.descriptions.get(name, ""),
                "messages_per_second": _rounded(self.spread(name, "rate").as_dict(), 1),
                "cpu_seconds_per_1k": _rounded(self.spread(name, "cpu").as_dict(), 4),
                "peak_rss_mb": _rounded(self.spread(name, "rss").as_dict(), 1),
                "endpoint_cpu_seconds_per_1k": _rounded(self.spread(name, "endpoint_cpu").as_dict(), 4),
                "runs": [r.as_dict() for r in runs],
            }
        return {
            "meta": self.meta,
            "drain": drain,
            "ratios": {k: {m: round(v, 3) for m, v in r.items()} for k, r in self.ratios().items()},
            "latency": None if self.latency is None else self.latency.as_dict(),
            "micro": [c.as_dict() for c in self.micro],
            "soak": None if self.soak is None else self.soak.as_dict(),
            "store": None if self.store is None else self.store.as_dict(),
            "targets": [t.as_dict() for t in self.targets()],
            "failures": self.failures,
        }


def _rounded(d: dict[str, float | int], digits: int) -> dict[str, float | int]:
    return {k: (round(v, digits) if isinstance(v, float) and math.isfinite(v) else v) for k, v in d.items()}


def write(results: Results, path: Path | None = None) -> Path:
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results.as_dict(), indent=2) + "\n")
    return path


def _spread(s: Spread, fmt: str) -> str:
    if s.n == 0:
        return "-"
    if s.n == 1:
        return format(s.median, fmt)
    return f"{format(s.median, fmt)} ({format(s.low, fmt)}-{format(s.high, fmt)})"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return lines


def render(results: Results) -> str:
    meta = results.meta
    out: list[str] = []
    load = meta.get("load_average", {})
    out.append(
        f"sis-consumer benchmark — {meta.get('started_at', '')}, {meta.get('cpus')} CPUs, "
        f"load average {load.get('before', '?')} before / {load.get('after', '?')} after, "
        f"{meta.get('duration_seconds', 0):.0f} s"
    )
    if results.drains:
        c = meta.get("corpus", {})
        out += [
            "",
            f"Drain: {c.get('messages', 0):,} messages preloaded on fauxqs {meta.get('fauxqs')} "
            f"(mean {c.get('mean_bytes', 0):,.0f} B; {c.get('sis_messages', 0):,} SIS events = "
            f"{c.get('imports', 0)} imports, with duplicates), {meta.get('pollers')} pollers, "
            f"median of {meta.get('runs')} runs (min-max)",
        ]
        rows = []
        for name in results.drains:
            rows.append(
                [
                    name,
                    _spread(results.spread(name, "rate"), ",.0f"),
                    _spread(results.spread(name, "cpu"), ".3f"),
                    _spread(results.spread(name, "rss"), ".0f"),
                    _spread(results.spread(name, "endpoint_cpu"), ".3f"),
                    results.descriptions.get(name, ""),
                ]
            )
        out += _table(["contender", "msg/s", "CPU s/1k msgs", "peak RSS MB", "fauxqs CPU s/1k", "what"], rows)
        ratios = results.ratios()
        if ratios:
            out.append("")
            out += _table(
                ["ratio", "throughput", "CPU/1k"],
                [[k, f"{v['throughput']:.2f} x", f"{v['cpu_per_1k']:.2f} x"] for k, v in ratios.items()],
            )
    if results.latency is not None:
        lat = results.latency
        out += [
            "",
            f"Latency: SendMessage of the finishing event -> canvas_sis_imports_finished_total on /metrics, "
            f"{len(lat.samples)} imports at {lat.rate:.0f} msg/s of mixed traffic, "
            f"{meta.get('latency_pollers')} pollers (scrape every {lat.poll_interval * 1000:g} ms, "
            f"one scrape {lat.scrape_seconds * 1000:.1f} ms)",
            f"  p50 {lat.percentile(50) * 1000:.1f} ms   p90 {lat.percentile(90) * 1000:.1f} ms   "
            f"p99 {lat.percentile(99) * 1000:.1f} ms   max {max(lat.samples) * 1000:.1f} ms   "
            f"(daemon CPU {lat.daemon_cpu_seconds / lat.seconds:.0%} of a core)",
        ]
        if (meta.get("latency_pollers") or 1) > 1:
            out.append(
                "  note: fauxqs wakes every waiting long poll on each SendMessage (SQS does not), so at "
                "light load each message costs the daemon one ReceiveMessage per poller; this inflates "
                "both figures"
            )
    if results.micro:
        out += ["", "Micro: in-process, events per CPU-second (one core), median of repeats"]
        out += _table(
            ["events", "case", "events/s/core", "µs/event"],
            [[c.kind, c.name, f"{c.per_cpu_second:,.0f}", f"{c.per_event_us:.2f}"] for c in results.micro],
        )
    if results.store is not None:
        cost = results.store
        per_other = cost.other_requests / max(1, cost.other_messages)
        out += [
            "",
            f"Store: DynamoDB requests per message, the real handler on a local DynamoDB "
            f"({cost.other_messages:,} other Live Events, {len(cost.sis_requests):,} SIS events)",
        ]
        out += _table(
            ["messages", "count", "requests each"],
            [
                [
                    "other Live Events",
                    f"{cost.other_messages:,}",
                    f"{per_other:g}",
                ]
            ]
            + [[k, f"{len(v):,}", f"{sum(v) / len(v):.2f}"] for k, v in cost.by_kind.items()],
        )
        out.append("  by operation: " + ", ".join(f"{op} {n:,}" for op, n in cost.operations.most_common()))
    if results.soak is not None:
        soak = results.soak
        out += [
            "",
            f"Soak: {soak.points[-1].messages:,} messages through one daemon in {soak.seconds:.0f} s, "
            f"{soak.imports:,} imports, store {soak.store_bytes / 2**20:.1f} MB",
            "  RSS MB after: "
            + ", ".join(f"{p.messages // 1000}k {p.rss_bytes / 2**20:.1f}" for p in soak.points),
        ]
    targets = results.targets()
    if targets:
        out += ["", "Targets (reported, not asserted):"]
        out += [f"  [{'ok' if t.met else 'MISS'}] {t.what}: {t.value}" for t in targets]
    if results.failures:
        out += ["", "FAILURES:"] + [f"  {f}" for f in results.failures]
    return "\n".join(out)
