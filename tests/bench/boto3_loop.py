"""A peer: what a cron-script author writes. Plain sync boto3, one thread: receive 10 (long poll),
`json.loads` each body, `delete_message_batch`.

`python -m tests.bench.boto3_loop QUEUE_URL`; endpoint, region and credentials from botocore's own
variables. Runs until SIGTERM/SIGINT, then prints `{"deleted": N, "receives": N}` and exits.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

import boto3

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import DeleteMessageBatchRequestEntryTypeDef

counts = {"deleted": 0, "receives": 0}


def handle(event: Any) -> None:
    """The script's business: here, nothing."""


def main(queue_url: str) -> None:
    sqs = boto3.client("sqs")
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=20)
        counts["receives"] += 1
        messages = response.get("Messages", [])
        if not messages:
            continue
        for message in messages:
            handle(json.loads(message["Body"]))
        entries: list[DeleteMessageBatchRequestEntryTypeDef] = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)
        ]
        result = sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        counts["deleted"] += len(result.get("Successful", []))


def report_and_exit(_signum: int, _frame: object) -> None:
    print(json.dumps(counts), flush=True)
    os._exit(0)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("queue_url")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, report_and_exit)
    signal.signal(signal.SIGINT, report_and_exit)
    main(args.queue_url)
    sys.exit(1)
