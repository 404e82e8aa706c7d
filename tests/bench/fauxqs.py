"""fauxqs, an SQS emulator on Node, as a child process on a loopback port (moto is too slow
with depth), and a minimal client for what the harness itself does: create queues, preload,
watch the depth, send one message.

The harness's client speaks SQS's JSON protocol over one keep-alive connection without botocore:
it costs the shared CPUs about 0.15 ms per call, so watching the queue every 20 ms does not slow
the contender it watches. fauxqs does not check signatures.
"""

from __future__ import annotations

import http.client
import json
import selectors
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from consumer.sandbox.local_sqs import FAKE_CREDENTIALS, REGION, Queues
from tests.bench import node

STARTUP_TIMEOUT = 20.0


class SqsError(RuntimeError):
    pass


class SqsApi:
    """Unsigned SQS JSON-protocol calls on one connection. Not thread-safe: one per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

    def call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload)
        headers = {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": f"AmazonSQS.{action}"}
        for attempt in (1, 2):
            try:
                self._conn.request("POST", "/", body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                if attempt == 2:
                    raise
        if response.status != 200:
            raise SqsError(f"{action}: HTTP {response.status}: {data[:500]!r}")
        result: dict[str, Any] = json.loads(data) if data else {}
        return result

    def close(self) -> None:
        self._conn.close()

    def create_queue(self, name: str, attributes: dict[str, str] | None = None) -> str:
        url: str = self.call("CreateQueue", {"QueueName": name, "Attributes": attributes or {}})["QueueUrl"]
        return url

    def attributes(self, queue_url: str, names: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = self.call(
            "GetQueueAttributes", {"QueueUrl": queue_url, "AttributeNames": list(names)}
        )["Attributes"]
        return found

    def depth(self, queue_url: str) -> tuple[int, int]:
        """(visible, in flight) messages."""
        attrs = self.attributes(
            queue_url, ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        )
        return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])

    def send(self, queue_url: str, body: str) -> None:
        self.call("SendMessage", {"QueueUrl": queue_url, "MessageBody": body})

    def send_all(self, queue_url: str, bodies: Sequence[str]) -> None:
        """Preload in batches of 10, in order."""
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(j), "MessageBody": b} for j, b in enumerate(bodies[i : i + 10])]
            failed = self.call("SendMessageBatch", {"QueueUrl": queue_url, "Entries": entries}).get("Failed")
            if failed:
                raise SqsError(f"SendMessageBatch failed for {failed}")


class Fauxqs:
    """`with Fauxqs(workdir) as sqs:` a fresh endpoint; `sqs.create_queues()` a queue and its DLQ."""

    def __init__(self, workdir: Path) -> None:
        self.home = node.ensure_installed()
        self.log_path = workdir / "fauxqs.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [node.node(), str(self.home / "fauxqs_server.js")],
                stdin=subprocess.PIPE,  # closing it stops the server, even if we die
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=self.home,
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.process.stdout, selectors.EVENT_READ)
            if not sel.select(STARTUP_TIMEOUT):
                self._stop()
                raise SqsError(f"fauxqs did not start in {STARTUP_TIMEOUT}s; see {self.log_path}")
        line = self.process.stdout.readline()
        if not line:
            self._stop()
            raise SqsError(f"fauxqs exited at start; see {self.log_path}")
        self.port = int(json.loads(line)["port"])
        self.api = SqsApi(self.port)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.process is None:
            return
        if hasattr(self, "api"):
            self.api.close()
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()

    def create_queues(self, name: str = "canvas-live-events-bench", max_receive_count: int = 5) -> Queues:
        dlq_url = self.api.create_queue(f"{name}-dlq")
        dlq_arn = self.api.attributes(dlq_url, ["QueueArn"])["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive_count)})
        queue_url = self.api.create_queue(name, {"RedrivePolicy": redrive})
        return Queues(endpoint_url=self.endpoint_url, queue_url=queue_url, dlq_url=dlq_url, region=REGION)


def client_env(queues: Queues) -> dict[str, str]:
    """The environment every contender gets: botocore's (and the AWS SDK's) own variables."""
    return {
        **queues.env(),
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
    }


def wait_empty(api: SqsApi, queue_url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while api.depth(queue_url) != (0, 0):
        if time.monotonic() > deadline:
            raise SqsError(f"queue not empty after {timeout}s: {api.depth(queue_url)}")
        time.sleep(0.05)
