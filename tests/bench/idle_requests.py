"""What two idle replicas cost in requests: `python -m tests.bench.idle_requests [SECONDS]`.

Two real `sis-consumer run` processes share one DynamoDB table (moto's server) and one queue
(moto's SQS) with no traffic; after they settle, their own counters
(`sis_consumer_store_requests_total`, `sis_consumer_sqs_requests_total`) are read twice, SECONDS
apart (default 180), and the difference is scaled to 30 days. README "What it costs a month"
prices these counts.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from consumer.sandbox.local_sqs import LocalSqs, free_port
from tests.support.cli import SIS_CONSUMER
from tests.support.dynamodb import LocalDynamoDB, create_table, dynamodb_env, environment, new_table_name
from tests.support.waiting import wait_until

COUNTERS = ("sis_consumer_store_requests_total", "sis_consumer_sqs_requests_total")
MONTH = 30 * 86400
Counts = dict[tuple[str, str], float]


def scrape(port: int) -> Counts:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, s.labels["operation"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name in COUNTERS and s.labels.get("result") == "ok"
    }


def ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def measure(seconds: float) -> list[Counts]:
    """Requests per 30 days of each replica, from `seconds` of idling."""
    with LocalSqs() as sqs, LocalDynamoDB() as dynamodb, tempfile.TemporaryDirectory() as workdir:
        queues = sqs.create_queues()
        table = new_table_name()
        with environment(dynamodb_env(dynamodb)):
            asyncio.run(create_table(table))
        env = {
            **os.environ,
            **queues.env(),
            **dynamodb_env(dynamodb),
            "SIS_CONSUMER_STORE": f"dynamodb://{table}",
        }
        env["AWS_ENDPOINT_URL_SQS"] = env.pop("AWS_ENDPOINT_URL")
        ports = [free_port(), free_port()]
        processes = [
            subprocess.Popen(
                [SIS_CONSUMER, "run"],
                env={**env, "SIS_CONSUMER_METRICS_ADDR": f"127.0.0.1:{port}"},
                stdout=subprocess.DEVNULL,
                cwd=workdir,
            )
            for port in ports
        ]
        try:
            for port in ports:
                wait_until(lambda port=port: ready(port), timeout=30, what="a replica's /readyz")  # type: ignore[misc]
            wait_until(lambda: scrape(ports[0]) != {} and scrape(ports[1]) != {}, timeout=60, what="requests")
            before = [scrape(port) for port in ports]
            time.sleep(seconds)  # the measurement window itself, not a wait for a condition
            after = [scrape(port) for port in ports]
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=40)
    return [
        {k: (v - b.get(k, 0.0)) * MONTH / seconds for k, v in a.items()}
        for a, b in zip(after, before, strict=True)
    ]


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 180.0
    for n, counts in enumerate(measure(seconds)):
        print(f"replica {n}, per 30 days (from {seconds:g} s idle):")
        for (name, operation), per_month in sorted(counts.items()):
            if per_month:
                print(f"  {name:<36} {operation:<16} {per_month:>12,.0f}")


if __name__ == "__main__":
    main()
