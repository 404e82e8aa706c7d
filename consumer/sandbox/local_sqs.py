"""A local SQS endpoint: moto's HTTP server on a free loopback port, with a Live Events queue and DLQ.

The same server keeps S3 buckets and delivers their event notifications to its queues, as S3 does:
`create_drop_folder` makes the daemon's drop folder (a bucket, an intake queue, the notification).
"""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from moto.server import ThreadedMotoServer

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

REGION = "us-east-1"
FAKE_CREDENTIALS = {"aws_access_key_id": "sandbox", "aws_secret_access_key": "sandbox"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class Queues:
    endpoint_url: str
    queue_url: str
    dlq_url: str
    region: str = REGION

    def env(self) -> dict[str, str]:
        """What `sis-consumer run` needs to reach these queues."""
        return {
            "SIS_CONSUMER_QUEUE_URL": self.queue_url,
            "SIS_CONSUMER_DLQ_URL": self.dlq_url,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
        }


def canvas_send_policy(queue_arn: str) -> str:
    """The queue policy of deploy/cloudformation.yaml: Canvas's AWS account may send to the queue."""
    statement = {
        "Sid": "CanvasLiveEventsSend",
        "Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::636161780776:root"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@dataclass(frozen=True, slots=True)
class DropFolder:
    """A versioned bucket whose uploads under `prefix` are notified to `queue_url`."""

    bucket: str
    prefix: str
    queue_url: str
    dlq_url: str

    def env(self) -> dict[str, str]:
        """What `sis-consumer run` needs besides its rules (`SIS_CONSUMER_INTAKE_RULES`)."""
        return {"SIS_CONSUMER_INTAKE_QUEUE_URL": self.queue_url}


class LocalSqs:
    """Start with `with LocalSqs() as sqs:`; `sqs.create_queues()` makes a fresh queue pair."""

    def __init__(self, port: int | None = None) -> None:
        # werkzeug logs every request moto serves; the demo's terminal is for the daemon.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._count = 0

    def __enter__(self) -> Self:
        self._server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.stop()

    def client(self) -> SQSClient:
        return boto3.client(
            "sqs",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
        )

    def s3_client(self) -> S3Client:
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
        )

    def create_queues(self, name: str | None = None, max_receive_count: int = 3) -> Queues:
        """A standard queue named as Canvas requires (`canvas-live-events...`), its DLQ behind a redrive."""
        self._count += 1
        name = name or f"canvas-live-events-sandbox-{self._count}"
        queue_url, dlq_url = self._queue_pair(name, max_receive_count)
        sqs = self.client()
        arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": canvas_send_policy(arn)})
        return Queues(endpoint_url=self.endpoint_url, queue_url=queue_url, dlq_url=dlq_url)

    def create_drop_folder(self, prefix: str = "nightly/", max_receive_count: int = 3) -> DropFolder:
        """A versioned bucket notifying its uploads under `prefix` to a fresh intake queue
        (with a DLQ). Like S3, configuring the notification sends an `s3:TestEvent` first."""
        self._count += 1
        bucket = f"sis-drop-sandbox-{self._count}"
        queue_url, dlq_url = self._queue_pair(f"sis-intake-sandbox-{self._count}", max_receive_count)
        arn = self.client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
        s3 = self.s3_client()
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        s3.put_bucket_notification_configuration(
            Bucket=bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": arn["Attributes"]["QueueArn"],
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}},
                    }
                ]
            },
        )
        return DropFolder(bucket=bucket, prefix=prefix, queue_url=queue_url, dlq_url=dlq_url)

    def _queue_pair(self, name: str, max_receive_count: int) -> tuple[str, str]:
        sqs = self.client()
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        queue_url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        return queue_url, dlq_url
