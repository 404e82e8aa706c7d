"""`sis-consumer store init` and `store copy`, and the commands that read a DynamoDB store, run for real."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path

import pytest

from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.submission import SubmissionStatus
from consumer.core.tracker import State
from consumer.errors import AlreadySubmitted
from consumer.sandbox.local_sqs import REGION
from tests.support.cli import clean_env, run_cli
from tests.support.dynamodb import LocalDynamoDB, dynamodb_env, environment, new_table_name
from tests.support.records import KEEP_JOURNAL, NOW, dropped, obs, submission


@pytest.fixture
def env(local_dynamodb: LocalDynamoDB) -> dict[str, str]:
    return clean_env(**dynamodb_env(local_dynamodb), SIS_CONSUMER_STORE=f"dynamodb://{new_table_name()}")


def test_store_init_creates_the_table_then_has_nothing_to_do(env: dict[str, str], tmp_path: Path) -> None:
    first = run_cli("store", "init", env=env, cwd=tmp_path)
    second = run_cli("store", "init", env=env, cwd=tmp_path)

    assert first.returncode == 0, first.output
    assert "created table" in first.stdout
    assert "TTL" in first.stdout
    assert "point-in-time recovery" in first.stdout
    assert (second.returncode, second.stdout.strip()) == (
        0,
        f"table {env['SIS_CONSUMER_STORE'][11:]} is ready: nothing to do",
    )


def test_run_refuses_a_missing_table_in_one_line_naming_store_init(
    env: dict[str, str], tmp_path: Path
) -> None:
    env = {
        **env,
        "SIS_CONSUMER_QUEUE_URL": "http://127.0.0.1:9/queue/canvas-live-events",
        "AWS_REGION": "us-east-1",
    }

    run = run_cli("run", env=env, cwd=tmp_path, timeout=30)

    assert run.returncode != 0
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert "does not exist" in run.stderr
    assert "sis-consumer store init" in run.stderr
    assert "Traceback" not in run.output


def test_store_copy_carries_a_sqlite_store_over_and_twice_changes_nothing(
    env: dict[str, str], tmp_path: Path, local_dynamodb: LocalDynamoDB
) -> None:
    """Drop-folder submissions included: their object versions stay claimed, their reports due."""
    db = tmp_path / "state.db"

    async def fill() -> None:
        async with open_sqlite(db, retention_seconds=KEEP_JOURNAL) as store:
            await store.apply(obs(State.IMPORTED, 5, batch=1), NOW)
            await store.apply(obs(State.IMPORTING, 5, batch=2), NOW)
            submission_id = await store.record_submission(replace(submission(), source=dropped()))
            await store.answer_submission(
                submission_id,
                status=SubmissionStatus.ACCEPTED,
                now=NOW,
                observation=obs(State.CREATED, 0, batch=3),
            )
            await store.save_result(obs(State.IMPORTED, 5).account, 1, {"warning_count": 1}, NOW, None)

    asyncio.run(fill())
    before = run_cli("imports", "--json", env={**env, "SIS_CONSUMER_STORE": f"sqlite:///{db}"}, cwd=tmp_path)
    assert run_cli("store", "init", env=env, cwd=tmp_path).returncode == 0

    first = run_cli("store", "copy", f"sqlite:///{db}", env["SIS_CONSUMER_STORE"], env=env, cwd=tmp_path)
    second = run_cli("store", "copy", f"sqlite:///{db}", env["SIS_CONSUMER_STORE"], env=env, cwd=tmp_path)
    after = run_cli("imports", "--json", env=env, cwd=tmp_path)

    assert first.returncode == 0, first.output
    assert first.stdout.strip() == "3 imports, 1 results, 1 submissions"
    assert (
        second.stdout.strip()
        == "3 imports already there, 1 results already there, 1 submissions already there"
    )
    assert json.loads(after.stdout) == json.loads(before.stdout)

    async def submit_again() -> None:
        async with open_dynamodb(
            env["SIS_CONSUMER_STORE"].removeprefix("dynamodb://"), region=REGION
        ) as copied:
            with pytest.raises(AlreadySubmitted):
                await copied.record_submission(replace(submission(), source=dropped()))
            assert [x.source for x in await copied.unreported()] == [dropped()]

    with environment(dynamodb_env(local_dynamodb)):
        asyncio.run(submit_again())


def test_store_copy_refuses_anything_but_sqlite_to_dynamodb(env: dict[str, str], tmp_path: Path) -> None:
    run = run_cli(
        "store", "copy", env["SIS_CONSUMER_STORE"], f"sqlite:///{tmp_path}/x.db", env=env, cwd=tmp_path
    )

    assert run.returncode == 2
    assert "sqlite:///path source and a dynamodb://table target" in run.stderr
