"""`make bench`: drain throughput against the limit and the peers, latency, micro-benchmark, soak.

    .venv/bin/python -m tests.bench [--messages N] [--runs N] [--pollers N] [--skip-node]
                                    [--soak] [--only drain,latency,micro,store,soak,limit,daemon,...]

Prints a table and writes tests/bench/results/latest.json. Exits 1 when a run failed (a contender
died, stalled, or the daemon's result was wrong); targets are reported, never asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from tests.bench import corpus, drain, latency, measure, micro, node, report, soak, store_requests
from tests.bench.contenders import CONTENDERS, NODE_CONTENDERS

SECTIONS = ("drain", "latency", "micro", "store", "soak")
DEFAULT_SECTIONS = ("drain", "latency", "micro", "store")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.bench", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages preloaded per drain (20000)")
    parser.add_argument("--runs", type=int, default=3, help="drains per contender; the median is shown (3)")
    parser.add_argument("--pollers", type=int, default=16, help="pollers/consumers of the contenders (16)")
    parser.add_argument("--skip-node", action="store_true", help="leave out the Node peer (sqs-consumer)")
    parser.add_argument("--soak", action="store_true", help="also run the soak (200,000 messages, ~2 min)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="comma-separated: sections (drain, latency, micro, store, soak) and/or contenders\n"
        f"({', '.join(CONTENDERS)}); a contender alone means a drain of just those",
    )
    parser.add_argument("--imports", type=int, default=100, help="imports timed by the latency run (100)")
    parser.add_argument("--rate", type=float, default=20.0, help="messages/s during the latency run (20)")
    parser.add_argument(
        "--latency-pollers",
        type=int,
        default=None,
        help="the daemon's pollers in the latency run (--pollers)",
    )
    parser.add_argument("--soak-messages", type=int, default=200_000, help="messages of the soak (200000)")
    parser.add_argument("--micro-events", type=int, default=20_000, help="events per micro case (20000)")
    parser.add_argument(
        "--output", type=Path, default=None, help="JSON file (tests/bench/results/latest.json)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory (logs, stores)")
    return parser


def _selection(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    only = [w.strip() for item in args.only for w in item.split(",") if w.strip()]
    unknown = [w for w in only if w not in SECTIONS and w not in CONTENDERS]
    if unknown:
        raise SystemExit(
            f"--only: unknown {', '.join(unknown)} (choose from {', '.join(SECTIONS + tuple(CONTENDERS))})"
        )
    sections = [s for s in SECTIONS if s in only]
    chosen = [c for c in CONTENDERS if c in only]
    if chosen and "drain" not in sections:
        sections.insert(0, "drain")
    if not only:
        sections = list(DEFAULT_SECTIONS) + (["soak"] if args.soak else [])
    elif args.soak and "soak" not in sections:
        sections.append("soak")
    contenders = chosen or list(CONTENDERS)
    if args.skip_node:
        contenders = [c for c in contenders if c not in NODE_CONTENDERS]
    return sections, contenders


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _git_commit() -> str:
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError):
        return "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "consumer"], capture_output=True, text=True)
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def _node_version() -> str:
    try:
        return node.node_version()
    except (node.NodeUnavailable, OSError, subprocess.CalledProcessError) as exc:
        return f"unavailable: {exc}"


def _load() -> list[float]:
    return [round(x, 2) for x in measure.load_average()]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    sections, contenders = _selection(args)
    started = time.monotonic()
    meta: dict[str, Any] = {
        "command": " ".join(["python -m tests.bench", *(argv if argv is not None else sys.argv[1:])]),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sections": sections,
        "cpus": os.cpu_count(),
        "load_average": {"before": _load()},
        "python": platform.python_version(),
        "node": _node_version(),
        "fauxqs": "1.9.2",
        "sqs_consumer": "14.2.8",
        "packages": {
            p: _version(p) for p in ("aiobotocore", "botocore", "boto3", "msgspec", "prometheus-client")
        },
        "git": _git_commit(),
        "messages": args.messages,
        "runs": args.runs,
        "pollers": args.pollers,
        "latency_pollers": args.latency_pollers or args.pollers,
    }
    results = report.Results(meta=meta, descriptions={n: CONTENDERS[n].description for n in contenders})
    workroot = Path(tempfile.mkdtemp(prefix="sis-bench-"))
    print(f"bench: {', '.join(sections)}; work directory {workroot}", flush=True)
    try:
        if "drain" in sections:
            _drains(args, contenders, results, workroot)
        if "latency" in sections:
            print(f"bench: latency, {args.imports} imports at {args.rate:g} msg/s...", flush=True)
            try:
                results.latency = latency.run(
                    args.latency_pollers or args.pollers, workroot, imports=args.imports, rate=args.rate
                )
            except Exception as exc:
                results.failures.append(f"latency: {exc!r}")
        if "micro" in sections:
            print("bench: micro-benchmark...", flush=True)
            results.micro = micro.run(args.micro_events)
        if "store" in sections:
            print("bench: DynamoDB requests per message...", flush=True)
            try:
                results.store = store_requests.run()
            except Exception as exc:
                results.failures.append(f"store: {exc!r}")
        if "soak" in sections:
            print(f"bench: soak, {args.soak_messages:,} messages...", flush=True)
            try:
                results.soak = soak.run(args.pollers, workroot, total=args.soak_messages)
            except Exception as exc:
                results.failures.append(f"soak: {exc!r}")
    finally:
        meta["load_average"]["after"] = _load()
        meta["duration_seconds"] = round(time.monotonic() - started, 1)
        path = report.write(results, args.output)
        print()
        print(report.render(results))
        print(f"\nJSON: {path}")
        if args.keep or results.failures:
            print(f"work directory (logs, stores): {workroot}")
        else:
            shutil.rmtree(workroot, ignore_errors=True)
    return 1 if results.failures else 0


def _drains(args: argparse.Namespace, contenders: list[str], results: report.Results, workroot: Path) -> None:
    bodies = corpus.build(args.messages)
    results.meta["corpus"] = {
        "messages": len(bodies.bodies),
        "mean_bytes": round(bodies.mean_size),
        "sis_messages": bodies.sis_messages,
        "imports": bodies.imports,
    }
    for run in range(1, args.runs + 1):
        for name in contenders:
            try:
                result = drain.run(CONTENDERS[name], bodies, args.pollers, workroot)
            except Exception as exc:
                results.failures.append(f"drain {name} run {run}: {exc!r}")
                print(f"bench: drain {run}/{args.runs} {name}: FAILED {exc!r}", flush=True)
                continue
            results.drains.setdefault(name, []).append(result)
            if result.problems:
                results.failures += [f"drain {name} run {run}: {p}" for p in result.problems]
            print(
                f"bench: drain {run}/{args.runs} {name:<12} {result.rate:>8,.0f} msg/s  "
                f"{result.cpu_per_1k:.3f} CPU-s/1k  {result.peak_rss_bytes / 2**20:.0f} MB"
                + (f"  PROBLEMS: {'; '.join(result.problems)}" if result.problems else ""),
                flush=True,
            )


if __name__ == "__main__":
    sys.exit(main())
