"""`IntakeHandler` and `IntakeReporter` in-process, on moto's S3, a SQLite store and the simulated
Canvas: the paths of a POST that fails, and who may write outcomes back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import pytest
from prometheus_client import CollectorRegistry

from consumer.ack import ACK, Message, Retry
from consumer.adapters.canvas import CanvasClient, open_canvas
from consumer.adapters.s3 import S3Objects, open_s3
from consumer.adapters.store_sqlite import SqliteStore, open_sqlite
from consumer.config import Secret
from consumer.core.drop_folder_rules import load_rules
from consumer.daemon.drop_folder import IntakeHandler, IntakeReporter
from consumer.errors import CanvasUnavailable
from consumer.observability.metrics import Metrics
from consumer.ports import CanvasResponse, SystemClock
from consumer.sandbox.knobs import Knobs
from consumer.sandbox.local_sqs import REGION, DropFolder, LocalSqs, Queues
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.drop_folder import RULES
from tests.support.sis_files import ACCOUNT_ID, USERS_CSV
from tests.support.waiting import await_until

KEY = "nightly/users.csv"


def notification(bucket: str, key: str, version_id: str) -> Message:
    """A message as S3 puts it on the intake queue (the key URL-encoded)."""
    obj = {"key": quote_plus(key), "size": 1, "eTag": "x", "versionId": version_id}
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": obj}}
    return Message("m-1", "r-1", json.dumps({"Records": [record]}))


@dataclass
class Rig:
    store: SqliteStore
    objects: S3Objects
    client: CanvasClient
    metrics: Metrics
    registry: CollectorRegistry
    message: Message

    def handler(self, canvas: Any = None) -> IntakeHandler:
        rules, _ = load_rules(RULES)
        return IntakeHandler(
            rules, self.objects, canvas or self.client, self.store, self.metrics, SystemClock()
        )

    def intake(self, result: str) -> float:
        return self.registry.get_sample_value("sis_consumer_intake_total", {"result": result}) or 0.0


@pytest.fixture
async def rig(
    canvas: SimulatedCanvas,
    local_sqs: LocalSqs,
    queues: Queues,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Rig]:
    for name, value in queues.env().items():
        monkeypatch.setenv(name, value)
    drop: DropFolder = local_sqs.create_drop_folder()
    put = local_sqs.s3_client().put_object(Bucket=drop.bucket, Key=KEY, Body=USERS_CSV)
    registry = CollectorRegistry()
    async with (
        open_sqlite(tmp_path / "state.db", owner="test-daemon") as store,
        open_s3(region=REGION, hook=lambda _op, _result: None) as objects,
        open_canvas(canvas.url, Secret(canvas.tokens[ACCOUNT_ID]), attempts=1) as client,
    ):
        yield Rig(
            store,
            objects,
            client,
            Metrics(registry),
            registry,
            notification(drop.bucket, KEY, put["VersionId"]),
        )


@pytest.mark.parametrize(
    "knobs",
    [Knobs(throttle_capacity=1.0, throttle_leak_per_second=2.0, request_cost=2.0)],
    ids=["tight_bucket"],
)
async def test_a_post_canvas_throttled_gives_the_object_back_and_a_later_delivery_submits_it(
    rig: Rig, canvas: SimulatedCanvas
) -> None:
    handler = rig.handler()

    first = await handler.handle(rig.message)  # the account lookup fills the bucket: the POST is refused

    assert isinstance(first, Retry)
    assert [r.status for r in canvas.requests if r.method == "POST"] == [403]
    assert await rig.store.unreported() == []  # the claim was given back

    async def handled() -> bool:  # S3's next delivery, once the bucket has drained
        return await handler.handle(rig.message) == ACK

    await await_until(handled, timeout=10, interval=0.1, what="a delivery that submits")
    assert len(canvas.imports) == 1
    (live,) = await rig.store.unreported()
    assert live.sis_batch_id in canvas.imports
    assert rig.intake("submitted") == 1
    assert rig.intake("retried") >= 1


class PostAnswers502:
    """The real client, except that every POST fails with a 502, after which Canvas may or may not
    have created the import."""

    def __init__(self, client: CanvasClient) -> None:
        self._client = client
        self.base_url = client.base_url
        self.remaining = self.most_remaining = None

    async def account(self, account_id: str = "self") -> dict[str, Any]:
        return await self._client.account(account_id)

    async def sis_import(self, account_id: str, import_id: int) -> dict[str, Any]:
        raise AssertionError("not used")

    async def create_sis_import(self, account_id: str, content: bytes, **_: Any) -> CanvasResponse:
        raise CanvasUnavailable("POST sis_imports.create: Canvas answered 502", status=502)


async def test_a_post_that_may_have_created_an_import_is_never_sent_again_and_is_reported(
    rig: Rig, local_sqs: LocalSqs
) -> None:
    handler = rig.handler(PostAnswers502(rig.client))

    assert await handler.handle(rig.message) == ACK
    assert await handler.handle(rig.message) == ACK  # S3 notifies again: nothing is sent

    assert (rig.intake("post_failed"), rig.intake("duplicate")) == (1, 1)
    reporter = IntakeReporter(rig.store, rig.objects, SystemClock(), Leading(True), interval=1)
    await reporter.tick()
    submission = await rig.store.submission(1)
    assert submission is not None
    assert submission.reported == "post_failed"
    assert submission.source is not None
    tags = await rig.objects.tags(submission.source)
    assert tags == {"sis-consumer-status": "post_failed", "sis-consumer-reason": "canvas_502"}


@dataclass
class Leading:
    leading: bool
    token: None = None


async def test_only_the_leader_writes_outcomes_back(rig: Rig) -> None:
    await rig.handler(PostAnswers502(rig.client)).handle(rig.message)
    follower = IntakeReporter(rig.store, rig.objects, SystemClock(), Leading(False), interval=1)

    await follower.tick()

    (submission,) = await rig.store.unreported()
    assert submission.source is not None
    assert await rig.objects.tags(submission.source) == {}
