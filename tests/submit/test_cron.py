"""`sis-consumer submit` as a cron job uses it: exit codes that tell mistakes from outcomes, a
summary a person can paste into a ticket, the errors CSV, a dry run, and the latest state known."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from consumer.commands.submit_help import EXIT_CODES, OPTION_HELP
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.cli import clean_env, cli
from tests.support.sis_files import ACCOUNT_ID, USERS_CSV, canvas_env, sis_file

README = Path(__file__).parents[2] / "README.md"
OUTCOMES = {0, 1, 2, 3}


def posts(canvas: SimulatedCanvas) -> list[str]:
    return [r.path for r in canvas.requests if r.method == "POST"]


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("no such file", 66),
        ("unknown flag", 64),
        ("a timeout that is not a duration", 64),
        ("multi-term batch mode without a change threshold", 64),
        ("a csv named .zip", 65),
        ("SIS_CONSUMER_CANVAS_URL missing", 78),
        ("an invalid SIS_CONSUMER_ variable", 78),
    ],
)
async def test_a_mistake_exits_with_its_own_code_and_sends_nothing(
    canvas: SimulatedCanvas, tmp_path: Path, case: str, code: int
) -> None:
    """None of these codes is one of an outcome (0-3), so cron can tell "no file" from "warnings"."""
    env = canvas_env(canvas, tmp_path / "s.db")
    path = sis_file(tmp_path, "users.csv")
    args = {
        "no such file": [str(tmp_path / "tonight.zip")],
        "unknown flag": [str(path), "--batch-mod"],
        "a timeout that is not a duration": [str(path), "--wait", "--timeout", "soon"],
        "multi-term batch mode without a change threshold": [str(path), "--multi-term-batch-mode"],
        "a csv named .zip": [str(sis_file(tmp_path, "other.csv").rename(tmp_path / "nightly.zip"))],
        "SIS_CONSUMER_CANVAS_URL missing": [str(path)],
        "an invalid SIS_CONSUMER_ variable": [str(path)],
    }[case]
    if case == "SIS_CONSUMER_CANVAS_URL missing":
        env = clean_env(SIS_CONSUMER_CANVAS_TOKEN=canvas.tokens[ACCOUNT_ID])
    if case == "an invalid SIS_CONSUMER_ variable":
        env = {**env, "SIS_CONSUMER_POLLERS": "lots"}

    run = await cli("submit", *args, env=env, cwd=tmp_path)

    assert run.returncode == code, run.output
    assert code not in OUTCOMES
    assert "Traceback" not in run.output
    assert run.stdout == ""
    assert canvas.requests == []  # not even the account lookup
    assert not (tmp_path / "s.db").exists()


def test_every_exit_code_is_in_help_and_in_the_readme() -> None:
    readme = README.read_text()
    for code, meaning in EXIT_CODES:
        assert re.search(rf"^\|\s*`?{code}`?\s*\|", readme, re.MULTILINE), f"exit code {code} not in README"
        assert meaning.split(":")[0].split(" (")[0] in readme or str(code) in readme


async def test_help_explains_every_flag_and_lists_the_exit_codes(tmp_path: Path) -> None:
    run = await cli("submit", "--help", env=clean_env(COLUMNS="200"), cwd=tmp_path)

    assert run.returncode == 0
    for name, text in OPTION_HELP.items():
        line = next(line for line in run.stdout.splitlines() if "--" + name.replace("_", "-") in line)
        assert text.split(",")[0][:40] in " ".join(run.stdout.split()), name
        assert line.strip() != "--" + name.replace("_", "-"), f"--{name} has no help"
    for code, meaning in EXIT_CODES:
        assert f"{code:>2}  {meaning}" in run.stdout


async def test_a_file_without_a_known_suffix_is_sent_as_what_its_bytes_are(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    path = tmp_path / "users.txt"
    path.write_bytes(USERS_CSV)

    run = await cli("submit", str(path), env=canvas_env(canvas, tmp_path / "s.db"), cwd=tmp_path)

    assert run.returncode == 0, run.output
    [post] = [r for r in canvas.requests if r.method == "POST"]
    assert post.params["extension"] == "csv"
    assert "users.txt: sent as csv (from its content)" in run.stderr


async def test_wait_prints_a_short_summary_with_counts_messages_and_links(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    canvas.plan(ACCOUNT_ID, "imported_with_messages", messages=2, errors_attachment_seconds=600)
    path = sis_file(tmp_path, "users.csv")

    run = await cli(
        "submit",
        str(path),
        "--wait",
        "--api-interval",
        "100ms",
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 2, run.output
    [imp] = canvas.imports.values()
    lines = run.stdout.splitlines()
    assert lines[0].startswith(f"SIS import {imp.id} imported_with_messages: users.csv, after ")
    assert "  counts: users 2" in lines
    assert "  2 warnings, 0 errors" in lines
    assert sum(1 for line in lines if line.startswith("    warning: ")) == 2
    assert any(line.startswith("  errors CSV: not written yet") for line in lines)  # not "false"
    assert f"  Canvas: {canvas.url}/accounts/{ACCOUNT_ID}/sis_import" in lines
    assert f"  API:    {canvas.url}/api/v1/accounts/{ACCOUNT_ID}/sis_imports/{imp.id}" in lines
    assert len(lines) <= 12
    assert max(len(line) for line in lines) <= 100


async def test_errors_csv_is_saved_once_canvas_has_written_it(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    """Canvas writes the CSV in a later job, here two seconds after the final state."""
    canvas.plan(ACCOUNT_ID, "failed_with_messages", messages=3, errors_attachment_seconds=2.0)
    path, saved = sis_file(tmp_path, "users.csv"), tmp_path / "errors.csv"

    run = await cli(
        "submit",
        str(path),
        "--wait",
        "--api-interval",
        "200ms",
        "--errors-csv",
        str(saved),
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 1, run.output
    [imp] = canvas.imports.values()
    rows = list(csv.reader(io.StringIO(saved.read_text())))
    assert rows[0] == ["sis_import_id", "file", "message", "row"]
    assert len(rows) == 1 + 3
    assert {row[0] for row in rows[1:]} == {str(imp.id)}
    assert f"  errors CSV: saved to {saved} (4 lines)" in run.stdout.splitlines()


async def test_dry_run_names_the_account_and_the_token_s_rights_and_sends_nothing(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    path = sis_file(tmp_path, "nightly.zip")
    account = canvas.account(ACCOUNT_ID)

    run = await cli(
        "submit",
        str(path),
        "--batch-mode",
        "--batch-mode-term-id",
        "sis_term_id:2026FA",
        "--dry-run",
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 0, run.output
    assert run.stdout.startswith("dry run: nothing was sent\n")
    assert f"  account: {ACCOUNT_ID} {account.name} (root account, uuid {account.uuid})" in run.stdout
    assert "  token: may use the SIS Imports API" in run.stdout
    assert "batch_mode=true batch_mode_term_id=sis_term_id:2026FA extension=zip" in run.stdout
    assert "warning: batch_mode without change_threshold" in run.stderr
    assert posts(canvas) == []
    assert not (tmp_path / "s.db").exists()


async def test_dry_run_with_a_wrong_token_exits_4(canvas: SimulatedCanvas, tmp_path: Path) -> None:
    path = sis_file(tmp_path, "users.csv")
    env = canvas_env(canvas, tmp_path / "s.db", token="1~notTheRightTokenAtAll00000000000000000000")

    run = await cli("submit", str(path), "--dry-run", env=env, cwd=tmp_path)

    assert run.returncode == 4, run.output
    assert "401" in run.stderr
    assert posts(canvas) == []


async def test_a_timed_out_wait_prints_the_state_canvas_reports_at_the_end(
    canvas: SimulatedCanvas, tmp_path: Path
) -> None:
    """The API is due only after an hour: the state printed is asked again when waiting stops,
    not the POST's `created` of two seconds ago."""
    canvas.plan(ACCOUNT_ID, stuck=True, queue_seconds=0.1)
    path = sis_file(tmp_path, "users.csv")

    run = await cli(
        "submit",
        str(path),
        "--wait",
        "--timeout",
        "2s",
        "--api-interval",
        "1h",
        env=canvas_env(canvas, tmp_path / "s.db"),
        cwd=tmp_path,
    )

    assert run.returncode == 3, run.output
    [imp] = canvas.imports.values()
    assert imp.workflow_state == "importing"
    assert run.stdout.startswith(f"SIS import {imp.id} importing: users.csv, still unfinished after ")
