"""`sis-consumer resolve` run for real: the operator's finish reaches the running daemon's metrics
once, clears the page, and works on the DynamoDB store too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from consumer.adapters.store_dynamodb import open_dynamodb
from consumer.core.tracker import Finished, Observation, State
from consumer.sandbox.local_sqs import REGION, Queues
from tests.support.cli import clean_env, run_cli
from tests.support.daemon import Daemon
from tests.support.dynamodb import LocalDynamoDB, create_table, dynamodb_env, environment, new_table_name
from tests.support.live_events import lifecycle
from tests.support.queue_state import send_all
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

ACCOUNT = "acct-uuid-resolve"
WHY = "aborted in the Canvas UI by jdoe, ticket 4711"


def stuck(daemon: Daemon, reason: str) -> float:
    return daemon.sample("canvas_sis_imports_stuck", account=ACCOUNT, reason=reason)


def test_resolving_a_dead_import_counts_its_finish_once_and_stops_its_page(
    queues: Queues, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in queues.env().items():
        monkeypatch.setenv(key, value)
    started = datetime.now(UTC) - timedelta(minutes=10)
    dead = lifecycle(
        account_uuid=ACCOUNT,
        account_id=1,
        sis_batch_id=101,
        states=["initializing", "created", "importing"],
        start=started,
    )
    waiting = lifecycle(
        account_uuid=ACCOUNT,
        account_id=1,
        sis_batch_id=102,
        states=["initializing", "created"],
        start=started,
    )
    send_all(queues, dead + waiting)
    daemon = Daemon(
        queues, tmp_path, SIS_CONSUMER_STUCK_RUNNING="60s", SIS_CONSUMER_STUCK_NEVER_STARTED="60s"
    )
    try:
        daemon.start()
        wait_until(lambda: stuck(daemon, "running_too_long") == 1, what="the dead import's page")
        assert stuck(daemon, "never_started") == 1  # 102 waits behind nothing alive

        run = run_cli(
            "resolve", ACCOUNT, "101", "--as", "aborted", "--why", WHY, env=daemon.env, cwd=tmp_path
        )

        assert run.returncode == 0, run.output
        assert "importing -> aborted" in run.stdout
        finished = ("canvas_sis_imports_finished_total", "aborted")
        wait_until(
            lambda: daemon.sample(finished[0], account=ACCOUNT, state=finished[1]) == 1,
            what="the finish counted",
        )
        wait_until(lambda: stuck(daemon, "running_too_long") == 0, what="the page to clear")
        again = run_cli(
            "resolve", ACCOUNT, "101", "--as", "failed", "--why", "twice", env=daemon.env, cwd=tmp_path
        )
        assert again.returncode == 1
        assert "has finished already (aborted)" in again.stderr
        assert daemon.sample(finished[0], account=ACCOUNT, state=finished[1]) == 1
        assert [line["event"] for line in daemon.log_lines() if line["event"] == "outbox.counted"]
        assert {i["sis_batch_id"]: i["state"] for i in daemon.imports()} == {101: "aborted", 102: "created"}
        assert daemon.stop() == 0
    finally:
        daemon.close()


def test_an_import_the_store_does_not_know_is_refused(queues: Queues, tmp_path: Path) -> None:
    env = clean_env(SIS_CONSUMER_STORE=f"sqlite:///{tmp_path / 'state.db'}")

    run = run_cli("resolve", ACCOUNT, "999", "--as", "failed", "--why", "orphan", env=env, cwd=tmp_path)

    assert run.returncode == 1
    assert run.stderr == f"sis-consumer: import 999 of account {ACCOUNT} is not in the store\n"


async def test_resolve_works_on_the_dynamodb_store(local_dynamodb: LocalDynamoDB, tmp_path: Path) -> None:
    table = new_table_name()
    env = dynamodb_env(local_dynamodb)
    with environment(env):
        await create_table(table)
        async with open_dynamodb(table, region=REGION, owner="daemon") as store:
            await store.apply(Observation(ACCOUNT, 7, State.IMPORTING, datetime.now(UTC)), datetime.now(UTC))

        run = run_cli(
            "resolve",
            ACCOUNT,
            "7",
            "--as",
            "failed",
            "--why",
            WHY,
            env=clean_env(**env, SIS_CONSUMER_STORE=f"dynamodb://{table}"),
            cwd=tmp_path,
        )

        assert run.returncode == 0, run.output
        async with open_dynamodb(table, region=REGION, owner="daemon") as store:
            claimed = await store.claim_effects()
            journal = await store.journal(ACCOUNT, 7)
        assert [e for c in claimed for e in c.effects if isinstance(e, Finished)] == [Finished(State.FAILED)]
        assert (journal[-1].source, journal[-1].note) == ("operator", WHY)
