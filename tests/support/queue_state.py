"""Putting messages on a test's Live Events queue and reading what is left, the way an operator's
AWS CLI would (boto3, synchronous: for tests that drive the daemon as a subprocess)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import boto3

from consumer.sandbox.local_sqs import Queues

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef


@functools.cache
def sqs_client(endpoint_url: str, region: str) -> SQSClient:
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name=region)


def send_all(queues: Queues, bodies: list[str]) -> None:
    """Send `bodies` in order, ten to a batch; fail the test if SQS refuses any."""
    sqs = sqs_client(queues.endpoint_url, queues.region)
    for i in range(0, len(bodies), 10):
        entries: list[SendMessageBatchRequestEntryTypeDef] = [
            {"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])
        ]
        assert not sqs.send_message_batch(QueueUrl=queues.queue_url, Entries=entries).get("Failed")


def queue_counts(queues: Queues) -> tuple[int, int]:
    """The queue's (visible, in flight) messages."""
    sqs = sqs_client(queues.endpoint_url, queues.region)
    attributes = sqs.get_queue_attributes(
        QueueUrl=queues.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )
