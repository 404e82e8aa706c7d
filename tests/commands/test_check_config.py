"""`sis-consumer check-config`: misspelled variables named, and `--probe` reaching the queue, the
store and Canvas for real, one line per check."""

from __future__ import annotations

import asyncio
from pathlib import Path

from consumer.adapters.store_sqlite import open_sqlite
from consumer.sandbox.local_sqs import LocalSqs, Queues
from tests.support.canvas_thread import CanvasThread
from tests.support.cli import Run, clean_env, run_cli
from tests.support.records import NOW
from tests.support.stores import DAEMON


def probe(tmp_path: Path, env: dict[str, str]) -> tuple[Run, dict[str, str]]:
    run = run_cli("check-config", "--probe", env=clean_env(**env), cwd=tmp_path)
    assert "Traceback" not in run.output
    lines = {line[6:19].strip(): line for line in run.stdout.splitlines()}
    return run, lines


def test_a_misspelled_variable_is_named_with_the_closest_real_one(tmp_path: Path) -> None:
    run = run_cli(
        "check-config", env=clean_env(SIS_CONSUMER_CANVAS_TOKEN_FILES="/run/secrets/token"), cwd=tmp_path
    )

    assert (
        "sis-consumer: warning: SIS_CONSUMER_CANVAS_TOKEN_FILES is not a setting of sis-consumer and is "
        "ignored: did you mean SIS_CONSUMER_CANVAS_TOKEN_FILE?"
    ) in run.stderr.splitlines()


def test_probe_checks_queue_store_and_canvas_and_names_the_root_account(
    queues: Queues, canvas_thread: CanvasThread, tmp_path: Path
) -> None:
    db = tmp_path / "state.db"

    async def a_daemon_was_here() -> None:
        async with open_sqlite(db, owner=DAEMON) as store:
            await store.note_last_event(NOW)

    asyncio.run(a_daemon_was_here())
    env = {
        **queues.env(),
        **canvas_thread.env(),
        "SIS_CONSUMER_STORE": f"sqlite:///{db}",
        "SIS_CONSUMER_ACCOUNTS": canvas_thread.account_uuid,
    }

    run, lines = probe(tmp_path, env)

    assert run.returncode == 0, run.output
    assert set(lines) == {"queue", "dlq", "store", "canvas"}
    assert lines["queue"].startswith("ok    queue         canvas-live-events-sandbox-")
    assert "standard, 0 waiting, 0 in flight, to a DLQ after 3 receives" in lines["queue"]
    assert "last Live Event recorded" in lines["store"]
    assert "(2024-03-01 12:00Z)" in lines["store"]
    assert lines["canvas"] == (
        f"ok    canvas        {canvas_thread.url}: account 1 Example University, uuid "
        f"{canvas_thread.account_uuid}; the token may use the SIS Imports API"
    )


def test_probe_fails_on_a_missing_queue_and_a_wrong_token_and_exits_1(
    local_sqs: LocalSqs, queues: Queues, canvas_thread: CanvasThread, tmp_path: Path
) -> None:
    env = {
        **queues.env(),
        **canvas_thread.env(),
        "SIS_CONSUMER_QUEUE_URL": f"{local_sqs.endpoint_url}/123456789012/canvas-live-events-nowhere",
        "SIS_CONSUMER_CANVAS_TOKEN": "1~revokedLastWeek000000000000000000000000000000",
        "SIS_CONSUMER_STORE": f"sqlite:///{tmp_path / 'new' / 'state.db'}",
    }

    run, lines = probe(tmp_path, env)

    assert run.returncode == 1, run.output
    assert lines["queue"].startswith("FAIL  queue ")
    assert "NonExistentQueue" in lines["queue"]
    assert lines["store"].startswith("ok    store ")  # the daemon creates it
    assert "not created yet" in lines["store"]
    assert lines["canvas"].startswith("FAIL  canvas ")
    assert "401" in lines["canvas"]
    assert "revokedLastWeek" not in run.output


def test_probe_fails_when_the_allowlist_leaves_out_the_token_s_account(
    queues: Queues, canvas_thread: CanvasThread, tmp_path: Path
) -> None:
    other = "Q2xnZXh9aHrHrxJqC2f8w5pTAm0LbVwAsKGu4hZd"
    env = {**queues.env(), **canvas_thread.env(), "SIS_CONSUMER_ACCOUNTS": other}

    run, lines = probe(tmp_path, env)

    assert run.returncode == 1, run.output
    assert lines["canvas"].startswith("FAIL  canvas ")
    assert "SIS_CONSUMER_ACCOUNTS does not list this UUID" in lines["canvas"]
