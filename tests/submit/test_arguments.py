"""`sis-consumer submit` checks every argument before its first request: a typo never leaves an
import behind in Canvas."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.commands.submit_help import EXIT_USAGE
from consumer.sandbox.simulated_canvas import SimulatedCanvas
from tests.support.cli import cli
from tests.support.sis_files import canvas_env, sis_file


@pytest.mark.parametrize(
    ("option", "value"), [("--timeout", "soon"), ("--api-interval", "often"), ("--timeout", "0")]
)
async def test_a_bad_wait_option_is_a_usage_error_before_any_request(
    canvas: SimulatedCanvas, tmp_path: Path, option: str, value: str
) -> None:
    path = sis_file(tmp_path, "users.csv")

    run = await cli(
        "submit", str(path), "--wait", option, value, env=canvas_env(canvas, tmp_path / "s.db"), cwd=tmp_path
    )

    assert run.returncode == EXIT_USAGE, run.output
    assert f"sis-consumer submit: error: argument {option}: " in run.stderr
    assert "Traceback" not in run.output
    assert canvas.requests == []
    assert canvas.imports == {}
