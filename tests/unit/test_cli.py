"""The real `sis-consumer` console script, run as a subprocess."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from consumer.adapters.store_sqlite import open_sqlite
from consumer.cli import _parser
from consumer.core.tracker import Observation, State

SCRIPT = Path(sys.executable).parent / "sis-consumer"
TOKEN = "7~Zq8dXk2PLmN4vB6rT1yU3wE5sA9fG0hJcKx7Lw"
ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
T0 = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)


def subcommands() -> list[str]:
    parser = _parser()
    (choices,) = (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(choices)


def sis_consumer(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with a clean environment: only PATH/HOME and what the test sets."""
    base = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return subprocess.run(
        [str(SCRIPT), *args],
        cwd=cwd,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def store_env(path: Path) -> dict[str, str]:
    return {"SIS_CONSUMER_STORE": f"sqlite:///{path}"}


def test_run_without_a_queue_url_exits_2_with_one_readable_line(tmp_path: Path) -> None:
    result = sis_consumer("run", cwd=tmp_path)

    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert "SIS_CONSUMER_QUEUE_URL" in line
    assert "Traceback" not in result.stderr


def test_an_invalid_variable_exits_2_naming_it(tmp_path: Path) -> None:
    result = sis_consumer("check-config", cwd=tmp_path, SIS_CONSUMER_POLLERS="lots")

    assert result.returncode == 2
    assert "SIS_CONSUMER_POLLERS" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_demo_with_an_invalid_log_level_exits_2_naming_it(tmp_path: Path) -> None:
    # Checked before the sandbox starts, like `run`: one line, not a KeyError traceback.
    result = sis_consumer("demo", cwd=tmp_path, SIS_CONSUMER_LOG_LEVEL="verbose")

    assert result.returncode == 2
    assert "SIS_CONSUMER_LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_sandbox_with_an_unknown_fate_exits_2_naming_the_choices(tmp_path: Path) -> None:
    result = sis_consumer("sandbox", "--json", "--fates", "imported,lucky", cwd=tmp_path)

    assert result.returncode == 2
    assert "lucky" in result.stderr
    assert "imported_with_messages" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""  # --json promises one JSON line or nothing


def test_sandbox_on_a_taken_port_exits_1_saying_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = sis_consumer("sandbox", "--json", "--port", str(port), cwd=tmp_path)

    assert result.returncode == 1
    assert f"cannot listen on port {port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_prints_json_with_the_token_masked(tmp_path: Path) -> None:
    result = sis_consumer(
        "check-config",
        cwd=tmp_path,
        SIS_CONSUMER_QUEUE_URL="https://sqs.eu-west-1.amazonaws.com/123456789012/canvas-live-events",
        SIS_CONSUMER_CANVAS_URL="https://school.instructure.com",
        SIS_CONSUMER_CANVAS_TOKEN=TOKEN,
    )

    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert config["canvas_token"] == "******** (set)"
    assert config["region"] == "eu-west-1"
    assert TOKEN not in result.stdout
    assert TOKEN not in result.stderr


def test_check_config_never_shows_the_token_when_the_configuration_is_invalid(tmp_path: Path) -> None:
    result = sis_consumer("check-config", cwd=tmp_path, SIS_CONSUMER_CANVAS_TOKEN=TOKEN)

    assert result.returncode == 2
    assert "SIS_CONSUMER_CANVAS_URL" in result.stderr
    assert TOKEN not in result.stdout + result.stderr


@pytest.mark.parametrize("command", [[], *([c] for c in subcommands())], ids=lambda c: " ".join(c) or "main")
def test_help_works(command: list[str], tmp_path: Path) -> None:
    result = sis_consumer(*command, "--help", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: sis-consumer")


def test_imports_json_on_an_empty_store_prints_an_empty_array(tmp_path: Path) -> None:
    env = store_env(tmp_path / "state.db")
    assert sis_consumer("store", "init", cwd=tmp_path, **env).returncode == 0

    result = sis_consumer("imports", "--json", cwd=tmp_path, **env)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_imports_refuses_a_store_that_does_not_exist_and_creates_none(tmp_path: Path) -> None:
    """A mistyped path must not look like an empty store: exit 2, one line naming the variable."""
    missing = tmp_path / "typo" / "state.db"

    result = sis_consumer("imports", cwd=tmp_path, **store_env(missing))

    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert "SIS_CONSUMER_STORE" in line
    assert str(missing) in line
    assert "does not exist" in line
    assert not missing.parent.exists()


async def seed(path: Path) -> None:
    def at(minutes: float) -> datetime:
        return T0 + timedelta(minutes=minutes)

    observations = [
        (Observation(ACCOUNT, 101, State.INITIALIZING, at(0), account_id="1"), at(1)),
        (Observation(ACCOUNT, 101, State.CREATED, at(0.5), account_id="1"), at(1)),
        (Observation(ACCOUNT, 101, State.IMPORTING, at(2)), at(3)),
        (Observation(ACCOUNT, 101, State.IMPORTED, at(12.5)), at(13)),
        (Observation(ACCOUNT, 102, State.CREATED, at(20), account_id="1"), at(21)),
    ]
    async with open_sqlite(path) as store:
        for obs, now in observations:
            await store.apply(obs, now)


def imports_json(tmp_path: Path) -> list[dict[str, Any]]:
    db = tmp_path / "state.db"
    asyncio.run(seed(db))
    result = sis_consumer("imports", "--json", cwd=tmp_path, **store_env(db))
    assert result.returncode == 0, result.stderr
    views: list[dict[str, Any]] = json.loads(result.stdout)
    return views


def test_imports_json_prints_the_public_fields_newest_first(tmp_path: Path) -> None:
    views = imports_json(tmp_path)

    assert [v["sis_batch_id"] for v in views] == [102, 101]
    assert all(type(v["sis_batch_id"]) is int for v in views)
    for view in views:
        assert {
            "account",
            "account_id",
            "sis_batch_id",
            "state",
            "origin",
            "created_at",
            "finished_at",
            "duration_seconds",
            "stuck",
        } <= view.keys()


def test_imports_json_describes_a_finished_import(tmp_path: Path) -> None:
    finished = next(v for v in imports_json(tmp_path) if v["sis_batch_id"] == 101)

    assert finished["account"] == ACCOUNT
    assert finished["account_id"] == "1"
    assert finished["state"] == "imported"
    assert finished["origin"] == "external"
    assert finished["created_at"] == "2024-03-01T02:00:00Z"
    assert finished["finished_at"] == "2024-03-01T02:12:30Z"
    assert finished["duration_seconds"] == 750.0
    assert finished["stuck"] is None


def test_imports_json_describes_an_unfinished_import(tmp_path: Path) -> None:
    waiting = next(v for v in imports_json(tmp_path) if v["sis_batch_id"] == 102)

    assert waiting["state"] == "created"
    assert waiting["created_at"] == "2024-03-01T02:20:00Z"
    assert waiting["finished_at"] is None
    assert waiting["duration_seconds"] is None


def test_imports_state_filter(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    asyncio.run(seed(db))

    result = sis_consumer("imports", "--json", "--state", "created", cwd=tmp_path, **store_env(db))

    assert result.returncode == 0, result.stderr
    assert [v["sis_batch_id"] for v in json.loads(result.stdout)] == [102]


def test_demo_without_the_sandbox_extra_says_in_one_line_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The production install has no moto: `demo` names the extra instead of a traceback."""
    from consumer.cli import main

    for module in ("moto", "moto.server"):  # None makes the import fail as if moto were not installed
        monkeypatch.setitem(sys.modules, module, None)
    for module in ("consumer.commands.demo", "consumer.sandbox.stack", "consumer.sandbox.local_sqs"):
        monkeypatch.delitem(sys.modules, module, raising=False)
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "pip install 'sis-consumer[sandbox]'" in err
    assert "moto" in err


def test_run_submit_and_imports_load_neither_boto3_nor_moto(tmp_path: Path) -> None:
    """The image installs only the core dependencies: the production commands must not need the sandbox's."""
    probe = (
        "import sys, consumer.cli, consumer.daemon.app, consumer.submitting; "
        "print(sorted({m.partition('.')[0] for m in sys.modules} & {'boto3', 'moto'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
