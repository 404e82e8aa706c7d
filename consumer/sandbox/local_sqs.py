"""A local SQS endpoint: moto's HTTP server on a free loopback port, with a Live Events queue and DLQ."""

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

    def create_queues(self, name: str | None = None, max_receive_count: int = 3) -> Queues:
        """A standard queue named as Canvas requires (`canvas-live-events...`), its DLQ behind a redrive."""
        self._count += 1
        name = name or f"canvas-live-events-sandbox-{self._count}"
        sqs = self.client()
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        queue_url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": redrive})["QueueUrl"]
        return Queues(endpoint_url=self.endpoint_url, queue_url=queue_url, dlq_url=dlq_url)
