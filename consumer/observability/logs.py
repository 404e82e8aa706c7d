"""structlog set-up: JSON (or console) lines to stdout, with every secret redacted (`redaction`)."""

from __future__ import annotations

import logging
import re
import shutil
import sys
from typing import Final

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from consumer.redaction import redact

_LEVELS: Final = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}


_ACCOUNT_UUID = re.compile(r"^[A-Za-z0-9]{40}$")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_NOT_FOR_PEOPLE: Final = frozenset({"message_id", "event_name", "instance"})
"""Kept in the JSON logs; on a person's console they only make lines longer."""
LONGEST_VALUE: Final = 48


def for_people(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The console's processor: account UUIDs shortened, message ids left to the JSON logs, long
    values (lists of warnings, error texts) cut, so that a line fits a terminal."""
    out: EventDict = {}
    for key, value in event_dict.items():
        if key in _NOT_FOR_PEOPLE:
            continue
        if key in {"event", "timestamp", "level", "exception"} or isinstance(value, bool | int | float):
            out[key] = value
        elif isinstance(value, str) and _ACCOUNT_UUID.match(value):
            out[key] = value[:8] + "…"
        elif value is not None:
            text = value if isinstance(value, str) else repr(value)
            out[key] = text if len(text) <= LONGEST_VALUE else text[: LONGEST_VALUE - 1] + "…"
    return out


def fit(line: str, width: int) -> str:
    """Cut each line of `line` to `width` visible characters (colour codes do not count)."""
    return "\n".join(_fit_one(part, width) for part in line.split("\n"))


def _fit_one(line: str, width: int) -> str:
    if len(_ANSI.sub("", line)) <= width:
        return line
    kept, seen, i = [], 0, 0
    while i < len(line) and seen < width - 1:
        code = _ANSI.match(line, i)
        if code is not None:
            kept.append(code.group())
            i = code.end()
            continue
        kept.append(line[i])
        seen, i = seen + 1, i + 1
    return "".join(kept) + "…" + ("\x1b[0m" if "\x1b[" in line else "")


class _FittedConsole:
    """structlog's console renderer, each line cut to the terminal's width."""

    def __init__(self, width: int) -> None:
        self._render = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
        self._width = width

    def __call__(self, logger: WrappedLogger, name: str, event_dict: EventDict) -> str:
        return fit(str(self._render(logger, name, event_dict)), self._width)


def processors(fmt: str = "json") -> list[Processor]:
    """The chain every log line goes through, redaction after everything that adds to the line."""
    people = fmt == "console"
    renderer: Processor = (
        _FittedConsole(shutil.get_terminal_size((120, 24)).columns)
        if people
        else structlog.processors.JSONRenderer()
    )
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
        if people
        else structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact,
        *([for_people] if people else []),  # after redaction: a cut must not halve a token
        renderer,
    ]


def configure(level: str = "info", fmt: str = "json") -> None:
    structlog.configure(
        processors=processors(fmt),
        wrapper_class=structlog.make_filtering_bound_logger(_LEVELS[level]),
        logger_factory=structlog.PrintLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
