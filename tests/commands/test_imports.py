"""`sis-consumer imports`, run for real against a store a daemon would have left: the daemon's stuck
verdicts, the Canvas account id and links, and `--watch`."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from consumer.adapters.store_sqlite import open_sqlite
from consumer.core.stuck import StuckReason
from consumer.core.tracker import State
from tests.support.cli import SIS_CONSUMER, clean_env, run_cli
from tests.support.records import ACCOUNT, NOW, obs
from tests.support.stores import DAEMON
from tests.support.waiting import wait_until

RUNNING, WAITING, FINISHED, LEFT_BEHIND = 1, 2, 3, 4
CANVAS = "https://canvas.example.edu"


async def seed(db: Path) -> None:
    """Four imports; the daemon judged two stuck, and one more before it finished (a verdict a
    stopped daemon left behind)."""
    async with open_sqlite(db, owner=DAEMON) as store:
        await store.apply(obs(State.IMPORTING, 0, batch=RUNNING), NOW)
        await store.apply(obs(State.CREATED, 1, batch=WAITING), NOW)
        await store.apply(obs(State.IMPORTED, 2, batch=FINISHED), NOW)
        await store.apply(obs(State.CREATED, 3, batch=LEFT_BEHIND), NOW)
        await store.save_stuck(
            {
                (ACCOUNT, RUNNING): StuckReason.RUNNING_TOO_LONG,
                (ACCOUNT, LEFT_BEHIND): StuckReason.NEVER_STARTED,
            },
            NOW,
        )
        await store.apply(obs(State.IMPORTED, 4, batch=LEFT_BEHIND), NOW)


def env_for(db: Path, **more: str) -> dict[str, str]:
    return clean_env(SIS_CONSUMER_STORE=f"sqlite:///{db}", **more)


def listing(tmp_path: Path, *args: str, **env: str) -> list[dict[str, Any]]:
    db = tmp_path / "state.db"
    if not db.exists():
        asyncio.run(seed(db))
    run = run_cli("imports", "--json", *args, env=env_for(db, **env), cwd=tmp_path)
    assert run.returncode == 0, run.output
    views: list[dict[str, Any]] = json.loads(run.stdout)
    return views


def test_stuck_lists_the_daemon_s_verdicts_whatever_the_caller_s_thresholds(tmp_path: Path) -> None:
    """The caller's environment says nothing is stuck for 100 days; the daemon's verdict stands."""
    listed = listing(tmp_path, "--stuck", SIS_CONSUMER_STUCK_RUNNING="100d")

    assert [(v["sis_batch_id"], v["stuck"]) for v in listed] == [(RUNNING, "running_too_long")]
    assert listed[0]["stuck_since"] == "2024-03-01T12:00:00Z"


def test_state_stuck_is_the_same_filter_and_a_finished_import_is_never_stuck(tmp_path: Path) -> None:
    by_state = listing(tmp_path, "--state", "stuck")
    everything = {v["sis_batch_id"]: v["stuck"] for v in listing(tmp_path)}

    assert [v["sis_batch_id"] for v in by_state] == [RUNNING]
    assert everything == {RUNNING: "running_too_long", WAITING: None, FINISHED: None, LEFT_BEHIND: None}


def test_each_import_carries_its_canvas_account_id_and_links_without_credentials(tmp_path: Path) -> None:
    [running] = listing(tmp_path, "--stuck", SIS_CONSUMER_CANVAS_URL=f"https://sis:s3cret@{CANVAS[8:]}/")

    assert running["account_id"] == "1"
    assert running["links"] == {
        "canvas": f"{CANVAS}/accounts/1/sis_import",
        "api": f"{CANVAS}/api/v1/accounts/1/sis_imports/{RUNNING}",
    }


def test_the_table_shows_the_account_id_the_verdict_and_the_links(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    asyncio.run(seed(db))

    run = run_cli("imports", env=env_for(db, SIS_CONSUMER_CANVAS_URL=CANVAS), cwd=tmp_path)

    assert run.returncode == 0, run.output
    lines = run.stdout.splitlines()
    columns = "ACCOUNT  ACCOUNT ID  BATCH  STATE  ORIGIN  CREATED  DURATION  STUCK  API URL"
    assert lines[0].split() == columns.split()
    row = next(line for line in lines if f"/sis_imports/{RUNNING}" in line)
    assert row.split()[1:4] == ["1", str(RUNNING), "importing"]
    assert "running_too_long" in row
    assert lines[-1] == f"Canvas: account 1: {CANVAS}/accounts/1/sis_import"


def test_watch_draws_the_requested_number_of_frames_and_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    asyncio.run(seed(db))

    run = run_cli("imports", "--watch", "--count", "3", "--interval", "50ms", env=env_for(db), cwd=tmp_path)

    assert run.returncode == 0, run.output
    frames = run.stdout.split("\n\n")
    assert len(frames) == 3
    for frame in frames:
        head, columns, *rows = frame.strip().splitlines()
        assert "2 unfinished, 1 stuck; 2 imported" in head
        assert columns.split() == ["BATCH", "ACCOUNT", "ID", "STATE", "TIME", "STUCK", "ORIGIN"]
        assert rows[0].split()[:3] == [str(RUNNING), "1", "importing"]  # the stuck one first


def test_watch_shows_a_new_import_at_the_next_refresh_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    asyncio.run(seed(db))
    out = (tmp_path / "watch.out").open("w+")
    watch = subprocess.Popen(
        [SIS_CONSUMER, "imports", "--watch", "--interval", "100ms"],
        env=env_for(db),
        cwd=tmp_path,
        stdout=out,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: "unfinished" in (tmp_path / "watch.out").read_text(), timeout=20, what="a frame")

        async def another() -> None:
            async with open_sqlite(db) as store:
                await store.apply(obs(State.IMPORTING, 9, batch=777), NOW)

        asyncio.run(another())
        wait_until(
            lambda: "\n777 " in (tmp_path / "watch.out").read_text(), timeout=20, what="the new import"
        )
        watch.send_signal(signal.SIGINT)
        assert watch.wait(timeout=20) == 0
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
        out.close()
    assert "Traceback" not in (tmp_path / "watch.out").read_text()
