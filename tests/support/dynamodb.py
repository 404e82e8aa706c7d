"""A local DynamoDB: moto's server on a free loopback port, answering one request at a time.

moto's threaded server does not make a conditional write atomic: two concurrent writes conditioned
on the same version can both succeed, which real DynamoDB never allows. The stores' concurrency
rests on those conditions, so this server handles requests one after the other (HTTP/1.0, one
connection per request), as atomic as DynamoDB is, in a process of its own. SQS stays on the
threaded server: its long polls would block a serial one.
"""

from __future__ import annotations

import itertools
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from consumer.adapters.dynamodb_io import ensure_table, open_dynamo
from consumer.adapters.dynamodb_schema import TTL_ATTRIBUTE, table_definition
from consumer.sandbox.local_sqs import FAKE_CREDENTIALS, REGION, free_port

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_names = itertools.count(1)


class _OneConnectionPerRequest(MotoRequestHandler):
    protocol_version = "HTTP/1.0"


def serve(port: int) -> None:
    """Serve until killed (run in its own process, so the tests' GIL does not slow it down)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = DomainDispatcherApplication(create_backend_app)
    make_server(
        "127.0.0.1", port, app, threaded=False, request_handler=_OneConnectionPerRequest
    ).serve_forever()


class LocalDynamoDB:
    """Start with `with LocalDynamoDB() as dynamodb:`; tables come from `create_table`."""

    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Self:
        self._process = subprocess.Popen(
            [sys.executable, "-c", f"from tests.support.dynamodb import serve; serve({self.port})"],
            cwd=Path(__file__).parents[2],
        )
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local DynamoDB did not start on port {self.port}")
            time.sleep(0.05)
        return self

    def client(self) -> DynamoDBClient:
        return boto3.client(
            "dynamodb",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=FAKE_CREDENTIALS["aws_secret_access_key"],
        )

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def dynamodb_env(server: LocalDynamoDB) -> dict[str, str]:
    """What a process needs to reach DynamoDB on the local server."""
    return {
        "AWS_ENDPOINT_URL_DYNAMODB": server.endpoint_url,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["aws_access_key_id"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["aws_secret_access_key"],
    }


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """`env` set in this process for the block (aiobotocore reads endpoints from it)."""
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def new_table_name() -> str:
    return f"sis-consumer-test-{os.getpid()}-{next(_names)}"


async def create_table(name: str) -> None:
    """The table as `sis-consumer store init` makes it (the environment points at the server)."""
    async with open_dynamo(name, region=REGION, hook=lambda _op, _result: None) as db:
        await ensure_table(db, table_definition(name), TTL_ATTRIBUTE)
