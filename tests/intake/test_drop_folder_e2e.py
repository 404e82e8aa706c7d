"""The real daemon, moto's S3 notifying its uploads into SQS, and the simulated Canvas: a file
dropped into the bucket is submitted once, followed to its finish, and its outcome tagged onto it;
what is unsafe or unfit is refused and said so."""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from consumer.sandbox.local_sqs import DropFolder, LocalSqs
from tests.support.canvas_thread import CanvasThread
from tests.support.cli import run_cli
from tests.support.daemon import Daemon
from tests.support.drop_folder import MAX_BYTES, RULES, TERM
from tests.support.reconcile import FAST
from tests.support.sis_files import USERS_CSV
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

SLACK = 20.0
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 64


@pytest.fixture
def daemon(canvas_thread: CanvasThread, drop_folder: DropFolder, tmp_path: Path) -> Any:
    """The real `sis-consumer run` with the drop folder, not started yet."""
    process = Daemon(
        canvas_thread.queues,
        tmp_path,
        **{**FAST, **canvas_thread.env(), **drop_folder.env(), "SIS_CONSUMER_INTAKE_RULES": RULES},
    )
    try:
        yield process
    finally:
        process.close()


def tags(local_sqs: LocalSqs, drop_folder: DropFolder, key: str, version_id: str) -> dict[str, str]:
    found = local_sqs.s3_client().get_object_tagging(Bucket=drop_folder.bucket, Key=key, VersionId=version_id)
    return {t["Key"]: t["Value"] for t in found["TagSet"]}


def dropped(daemon: Daemon) -> list[dict[str, Any]]:
    """`imports --json` entries that came through the drop folder."""
    return [i for i in daemon.imports() if (i["submission"] or {}).get("source")]


def canvas_imports(canvas_thread: CanvasThread) -> int:
    return canvas_thread.read(lambda c: len(c.imports))


def test_a_dropped_file_is_submitted_once_finished_and_tagged_with_its_outcome(
    daemon: Daemon, canvas_thread: CanvasThread, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    daemon.start()
    key = "nightly/users fall+2026.csv"  # notified as nightly%2Fusers+fall%2B2026.csv

    put = local_sqs.s3_client().put_object(Bucket=drop_folder.bucket, Key=key, Body=USERS_CSV)

    def finished() -> dict[str, Any]:
        views = [v for v in dropped(daemon) if v["outcome"] is not None]
        return views[0] if views else {}

    view = wait_until(finished, timeout=SLACK, interval=0.3, what="the dropped file's import to finish")
    batch = view["sis_batch_id"]
    assert (view["state"], view["origin"]) == ("imported", "submitted")
    submission = view["submission"]
    assert submission["sha256"] == hashlib.sha256(USERS_CSV).hexdigest()
    assert submission["file_name"] == "users fall+2026.csv"
    assert submission["options"] == {
        "batch_mode": "true",
        "batch_mode_term_id": TERM,
        "change_threshold": "10",
        "extension": "csv",
    }
    assert submission["source"]["bucket"] == drop_folder.bucket
    assert submission["source"]["key"] == key
    assert submission["source"]["version_id"] == put["VersionId"]
    assert submission["source"]["etag"] == put["ETag"].strip('"')
    assert wait_until(
        lambda: tags(local_sqs, drop_folder, key, put["VersionId"]),
        timeout=SLACK,
        what="the outcome tagged onto the object",
    ) == {"sis-consumer-status": "imported", "sis-consumer-sis-batch-id": str(batch)}
    assert canvas_imports(canvas_thread) == 1
    assert daemon.sample("sis_consumer_intake_total", result="submitted") == 1
    assert daemon.sample("sis_consumer_intake_total", result="ignored") == 1  # S3's s3:TestEvent
    assert wait_until(lambda: dropped(daemon)[0]["submission"]["source"]["reported"], what="reported") == (
        "imported"
    )


def test_the_same_notification_delivered_twice_submits_once(
    daemon: Daemon, canvas_thread: CanvasThread, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    """S3 delivers at least once: the very notification S3 sent comes three times."""
    local_sqs.s3_client().put_object(Bucket=drop_folder.bucket, Key="nightly/users.csv", Body=USERS_CSV)
    sqs = local_sqs.client()

    def notification() -> str:
        for message in sqs.receive_message(QueueUrl=drop_folder.queue_url, WaitTimeSeconds=1).get(
            "Messages", []
        ):
            sqs.delete_message(QueueUrl=drop_folder.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if "Records" in json.loads(message["Body"]):
                return message["Body"]
        return ""

    body = wait_until(notification, timeout=SLACK, what="S3's notification of the upload")
    for _ in range(3):
        sqs.send_message(QueueUrl=drop_folder.queue_url, MessageBody=body)
    daemon.start()

    wait_until(
        lambda: daemon.sample("sis_consumer_intake_total", result="duplicate") == 2,
        timeout=SLACK,
        what="the two copies recognised",
    )
    assert daemon.sample("sis_consumer_intake_total", result="submitted") == 1
    assert canvas_imports(canvas_thread) == 1
    assert len(wait_until(lambda: dropped(daemon), timeout=SLACK, what="the import")) == 1


def test_an_empty_oversized_or_foreign_file_is_refused_tagged_logged_and_counted(
    daemon: Daemon, canvas_thread: CanvasThread, drop_folder: DropFolder, local_sqs: LocalSqs
) -> None:
    daemon.start()
    s3 = local_sqs.s3_client()
    files = {
        "nightly/empty.csv": (b"", "empty"),
        "nightly/header-only.csv": (USERS_CSV.splitlines(keepends=True)[0], "empty"),
        "nightly/huge.csv": (USERS_CSV * (MAX_BYTES // len(USERS_CSV) + 1), "too_large"),
        "nightly/photo.zip": (PNG, "not_sis_file"),
    }
    versions = {
        key: s3.put_object(Bucket=drop_folder.bucket, Key=key, Body=body)["VersionId"]
        for key, (body, _) in files.items()
    }

    for key, (_, reason) in files.items():
        assert wait_until(
            functools.partial(tags, local_sqs, drop_folder, key, versions[key]),
            timeout=SLACK,
            what=f"{key} tagged",
        ) == {"sis-consumer-status": "refused", "sis-consumer-reason": reason}
    refused = {line["key"]: line for line in daemon.log_lines() if line.get("event") == "intake.refused"}
    assert {key: line["reason"] for key, line in refused.items()} == {k: r for k, (_, r) in files.items()}
    assert refused["nightly/huge.csv"]["level"] == "warning"
    assert daemon.sample("sis_consumer_intake_total", result="refused_empty") == 2
    assert daemon.sample("sis_consumer_intake_total", result="refused_too_large") == 1
    assert daemon.sample("sis_consumer_intake_total", result="refused_not_sis_file") == 1
    assert daemon.sample("sis_consumer_intake_total", result="submitted") == 0
    assert canvas_imports(canvas_thread) == 0
    assert dropped(daemon) == []


def test_an_unsafe_rule_is_refused_at_start_up(daemon: Daemon, tmp_path: Path) -> None:
    unsafe = RULES.replace("change_threshold = 10", "")
    env = {**daemon.env, "SIS_CONSUMER_INTAKE_RULES": unsafe}

    run = run_cli("run", env=env, cwd=tmp_path, timeout=30)

    assert run.returncode == 2, run.output
    assert run.stderr.splitlines() == [
        "sis-consumer: invalid configuration:",
        "  SIS_CONSUMER_INTAKE_RULES: rule 'nightly/': refused: batch_mode without change_threshold: a "
        "truncated file would delete everything it leaves out of the term; set change_threshold (a "
        "percentage, e.g. 10) (or, knowing the risk, allow_unsafe = true)",
    ]
