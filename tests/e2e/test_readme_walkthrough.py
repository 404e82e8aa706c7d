"""README "Before you deploy", followed step by step against the simulated Canvas: the real
`sis-consumer sandbox --json`, a real `sis-consumer run`, and each command the README shows, in its
order, with the environment the sandbox gives."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import Run, run_cli
from tests.support.daemon import Daemon
from tests.support.sandbox_process import RunningSandbox, running_sandbox
from tests.support.waiting import wait_until

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "### Trying the steps first against the simulated Canvas"
USERS = b"user_id,login_id,first_name,last_name,email,status\nu1,ada,Ada,Lovelace,ada@example.edu,active\n"


def readme_commands() -> list[list[str]]:
    """The commands of the README's walk-through block, comments dropped, in order."""
    text = README.read_text(encoding="utf-8")
    block = text[text.index(SECTION) :].split("```sh\n", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("#", 1)[0]) for line in block.splitlines() if line.strip()]


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[RunningSandbox]:
    with running_sandbox(tmp_path, "imported_with_messages") as running:
        yield running


@pytest.fixture
def daemon(sandbox: RunningSandbox, tmp_path: Path) -> Iterator[Daemon]:
    running = Daemon(
        sandbox.queues,
        tmp_path,
        SIS_CONSUMER_CANVAS_URL=sandbox.described["canvas_url"],
        SIS_CONSUMER_CANVAS_TOKEN=sandbox.account["token"],
        SIS_CONSUMER_ACCOUNTS=sandbox.account["uuid"],
    ).start()
    yield running
    running.close()


def test_the_readme_shows_these_commands_in_this_order() -> None:
    assert readme_commands() == [
        ["sis-consumer", "sandbox", "--json"],
        ["sis-consumer", "run"],
        ["sis-consumer", "check-config", "--probe"],
        ["sis-consumer", "submit", "users.csv", "--dry-run"],
        ["sis-consumer", "submit", "users.csv", "--wait", "--errors-csv", "errors.csv"],
        ["sis-consumer", "imports"],
        ["sis-consumer", "imports", "--stuck"],
    ]


def test_the_readme_steps_work_against_the_sandbox(daemon: Daemon, tmp_path: Path) -> None:
    """Probe: every line ok; dry run: nothing sent; submit: imported with warnings (exit 2) and
    the errors CSV saved; the daemon's first sis_batch.* line; the import listed, nothing stuck."""
    (tmp_path / "users.csv").write_bytes(USERS)
    runs: list[Run] = []
    for command in readme_commands()[2:]:
        run = run_cli(*command[1:], env=daemon.env, cwd=tmp_path, timeout=90)
        assert "Traceback" not in run.output
        runs.append(run)
    probe, dry_run, submit, imports, stuck = runs

    assert probe.returncode == 0, probe.output
    assert [line.split()[:2] for line in probe.stdout.splitlines()] == [
        ["ok", "queue"],
        ["ok", "dlq"],
        ["ok", "store"],
        ["ok", "canvas"],
    ]
    assert dry_run.returncode == 0, dry_run.output
    assert "nothing was sent" in dry_run.stdout

    assert submit.returncode == 2, submit.output
    (batch,) = re.findall(r"^SIS import (\d+) imported_with_messages", submit.stdout, re.MULTILINE)
    assert (tmp_path / "errors.csv").read_text().startswith("sis_import_id,")

    logged = wait_until(
        lambda: [
            line
            for line in daemon.log_lines()
            if line["event"].startswith("sis_batch.") and line.get("sis_batch_id") == int(batch)
        ],
        timeout=20,
        what="the daemon's first sis_batch.* line",
    )
    assert logged[0]["event"] == "sis_batch.applied"

    assert imports.returncode == 0, imports.output
    assert batch in imports.stdout
    assert f"/api/v1/accounts/1/sis_imports/{batch}" in imports.stdout
    assert stuck.returncode == 0, stuck.output
    assert batch not in stuck.stdout
