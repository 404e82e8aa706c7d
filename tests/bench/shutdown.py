"""How fast SIGTERM stops the daemon, and what abandoning a long poll would cost instead.

    .venv/bin/python -m tests.bench.shutdown [--runs N] [--visibility S]

1. **Stop time**: the real `sis-consumer run` against moto on an idle queue, stopped with SIGTERM at
   a random moment of its long poll, for several `SIS_CONSUMER_WAIT_TIME_SECONDS`. The daemon lets
   polls in flight finish, so the stop takes up to one long poll.
2. **An abandoned long poll**: a 20 s ReceiveMessage is cancelled by the client after 1 s (what a
   daemon that stops at once would do), and a short poll (1 s) takes its place, as a "shorter long
   poll during the drain" would. One message is sent. How long until any receiver gets it?
3. **Cost of shorter polls**: ReceiveMessage calls of an idle daemon per 30 days, by wait time.

Prints the figures; asserts nothing (performance is measured, not asserted).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import signal
import statistics
import tempfile
import time
from pathlib import Path

from aiobotocore.session import get_session

from consumer.sandbox.local_sqs import FAKE_CREDENTIALS, REGION, LocalSqs, Queues
from tests.support.daemon import Daemon

POLLERS = 4  # SIS_CONSUMER_POLLERS' default
WAITS = (20, 10, 5)
SQS_PRICE_PER_MILLION = 0.40  # USD, standard queue, after the free tier


def stop_seconds(sqs: LocalSqs, wait: int, workdir: Path) -> float:
    daemon = Daemon(
        sqs.create_queues(),
        workdir,
        SIS_CONSUMER_WAIT_TIME_SECONDS=str(wait),
        SIS_CONSUMER_POLLERS=str(POLLERS),
        SIS_CONSUMER_LOG_FORMAT="json",
    )
    try:
        daemon.start()
        time.sleep(random.uniform(0, wait))  # a random moment of the poll: this is what is measured
        started = time.monotonic()
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(timeout=wait + 40)
        elapsed = time.monotonic() - started
    finally:
        daemon.close()
    if code != 0:
        raise RuntimeError(f"the daemon exited {code}:\n{daemon.output()[-2000:]}")
    return elapsed


async def abandoned_poll(queues: Queues, visibility: int) -> tuple[float, str]:
    """Seconds from SendMessage until a receiver got the message, and which receiver it was."""
    session = get_session()
    async with session.create_client(
        "sqs",
        region_name=REGION,
        endpoint_url=queues.endpoint_url,
        aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
    ) as client:

        async def receive(wait: int) -> list[object]:
            answer = await client.receive_message(
                QueueUrl=queues.queue_url, WaitTimeSeconds=wait, VisibilityTimeout=visibility
            )
            return list(answer.get("Messages", []))

        long_poll = asyncio.create_task(receive(20))
        await asyncio.sleep(1)
        long_poll.cancel()  # the client gives up; the server's receive does not know
        await asyncio.gather(long_poll, return_exceptions=True)
        sent = time.monotonic()
        await client.send_message(QueueUrl=queues.queue_url, MessageBody="{}")
        first = True
        while True:
            if await receive(1):
                return time.monotonic() - sent, "the short poll at once" if first else "a later poll"
            first = False
            if time.monotonic() - sent > visibility + 30:
                return float("nan"), "nobody"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.shutdown", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="stops per wait time (5)")
    parser.add_argument("--visibility", type=int, default=15, help="visibility timeout of test 2 (15 s)")
    args = parser.parse_args(argv)
    with LocalSqs() as sqs, tempfile.TemporaryDirectory(prefix="sis-shutdown-") as work:
        print(f"1. SIGTERM to exit, idle queue, {POLLERS} pollers, {args.runs} stops each:")
        for wait in WAITS:
            samples = [stop_seconds(sqs, wait, Path(work)) for _ in range(args.runs)]
            print(
                f"   WaitTimeSeconds={wait:>2}: median {statistics.median(samples):5.1f} s, "
                f"max {max(samples):5.1f} s  ({', '.join(f'{s:.1f}' for s in samples)})",
                flush=True,
            )
        print(f"2. a 20 s poll abandoned after 1 s, then 1 s polls; VisibilityTimeout={args.visibility}:")
        for _ in range(3):
            seconds, who = asyncio.run(abandoned_poll(sqs.create_queues(), args.visibility))
            print(f"   message received {seconds:5.1f} s after it was sent, by {who}", flush=True)
    print(f"3. ReceiveMessage calls of an idle daemon ({POLLERS} pollers) per 30 days:")
    for wait in WAITS:
        calls = POLLERS * 30 * 86_400 / wait
        dollars = calls / 1e6 * SQS_PRICE_PER_MILLION
        print(f"   WaitTimeSeconds={wait:>2}: {calls / 1e6:4.2f} M calls, ${dollars:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
