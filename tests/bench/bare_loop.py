"""The limit: a bare aiobotocore loop that receives and batch-deletes without looking at the body.

`python -m tests.bench.bare_loop QUEUE_URL --pollers 16`; endpoint, region and credentials come from
botocore's own variables (AWS_ENDPOINT_URL...), as for the daemon. Runs until SIGTERM/SIGINT, then
prints `{"deleted": N, "receives": N}` and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from typing import TYPE_CHECKING

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

if TYPE_CHECKING:
    from types_aiobotocore_sqs import SQSClient
    from types_aiobotocore_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

counts = {"deleted": 0, "receives": 0}


async def poll(client: SQSClient, queue_url: str) -> None:
    while True:
        response = await client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20
        )
        counts["receives"] += 1
        messages = response.get("Messages", [])
        if not messages:
            continue
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        result = await client.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        counts["deleted"] += len(result.get("Successful", []))


async def main(queue_url: str, pollers: int) -> None:
    config = AioConfig(max_pool_connections=pollers, read_timeout=40)
    async with get_session().create_client("sqs", config=config) as client:
        await asyncio.gather(*(poll(client, queue_url) for _ in range(pollers)))


def report_and_exit(_signum: int, _frame: object) -> None:
    print(json.dumps(counts), flush=True)
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queue_url")
    parser.add_argument("--pollers", type=int, default=16)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, report_and_exit)
    signal.signal(signal.SIGINT, report_and_exit)
    asyncio.run(main(args.queue_url, args.pollers))
    sys.exit(1)
