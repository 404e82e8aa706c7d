"""Argument types the commands share: argparse reports a bad value as a usage error, before any
request is made."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from consumer.config import parse_duration


def duration(text: str) -> float:
    """Seconds from `90`, `90s`, `15m`, `2h`; more than zero (a wait of 0 gives up at once, an
    interval of 0 is a busy loop)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not more than zero")
    return seconds


def whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        if not text.strip().isdecimal() or int(text) < low or (high is not None and int(text) > high):
            span = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number {span}")
        return int(text)

    return parse
