"""The console log format (the demo's, SIS_CONSUMER_LOG_FORMAT=console): lines a person reads in a
terminal, cut to its width, never at the cost of redaction."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import structlog

from consumer.observability import logs
from consumer.observability.logs import LONGEST_VALUE, fit, for_people

UUID = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
TOKEN = "7~Zq8dXk2PLmN4vB6rT1yU3wE5sA9fG0hJcKx7Lw"


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """An 80-column terminal; the test configures logging itself, once capsys holds stdout."""
    monkeypatch.setenv("COLUMNS", "80")
    yield
    structlog.reset_defaults()


def test_fit_cuts_a_long_line_to_the_width_with_an_ellipsis() -> None:
    assert fit("x" * 100, 20) == "x" * 19 + "…"
    assert fit("short", 20) == "short"


def test_fit_does_not_count_colour_codes_as_characters() -> None:
    red, reset = "\x1b[31m", "\x1b[0m"
    line = f"{red}{'y' * 15}{reset}"

    assert fit(line, 15) == line


def test_for_people_shortens_account_uuids_and_drops_message_ids() -> None:
    line = for_people(
        None, "info", {"event": "sis_batch.applied", "account": UUID, "message_id": "fc91-20b1"}
    )

    assert line == {"event": "sis_batch.applied", "account": UUID[:8] + "…"}


def test_for_people_cuts_a_long_value() -> None:
    line = for_people(None, "warning", {"event": "x", "error": "e" * 500, "count": 10**12})

    assert line["error"] == "e" * (LONGEST_VALUE - 1) + "…"
    assert line["count"] == 10**12


def test_every_console_line_fits_the_terminal(console: None, capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure("info", "console")
    structlog.get_logger("test").warning(
        "intake.refused", key="nightly/" + "deep/" * 40 + "users.csv", reason="r" * 300, account=UUID
    )

    out = capsys.readouterr().out
    assert "intake.refused" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_a_cut_value_never_shows_part_of_a_token(
    console: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the value is cut, not the line
    logs.configure("info", "console")
    structlog.get_logger("test").warning("canvas.failed", url="x" * 30 + f"?access_token={TOKEN}")

    out = capsys.readouterr().out
    assert "canvas.failed" in out
    assert "access_token=[RE…" in out  # cut after redaction
    assert TOKEN[:6] not in out
