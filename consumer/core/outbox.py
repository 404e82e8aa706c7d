"""Effects waiting to be counted, and how they are written down. Pure.

A committed transition stores its effects beside the record, in the same write. A daemon that
commits claims them in that write and counts them at once. Anything else that commits (`submit
--wait`, `resolve`, a store copy) leaves them unclaimed, and one live daemon claims them later with
a conditional write, so every effect reaches `/metrics` once, whoever committed it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.core.states import State
from consumer.core.tracker import (
    DurationMeasured,
    Effect,
    Finished,
    ImportRecord,
    Stage,
    StageMeasured,
    Succeeded,
)


@dataclass(frozen=True, slots=True)
class Claimed:
    """Effects a daemon claimed, with the record they belong to (for the metric labels)."""

    record: ImportRecord
    effects: tuple[Effect, ...]


def encode_effects(effects: tuple[Effect, ...]) -> str:
    return json.dumps([_encode(e) for e in effects], separators=(",", ":"))


def decode_effects(text: str) -> tuple[Effect, ...]:
    return tuple(_decode(item) for item in json.loads(text))


def _encode(effect: Effect) -> dict[str, Any]:
    if isinstance(effect, Finished):
        return {"finished": effect.state.value}
    if isinstance(effect, DurationMeasured):
        return {"duration": effect.seconds}
    if isinstance(effect, StageMeasured):
        return {"stage": effect.stage.value, "seconds": effect.seconds}
    return {"succeeded": effect.at.isoformat()}


def _decode(item: dict[str, Any]) -> Effect:
    if "finished" in item:
        return Finished(State(item["finished"]))
    if "duration" in item:
        return DurationMeasured(float(item["duration"]))
    if "stage" in item:
        return StageMeasured(Stage(item["stage"]), float(item["seconds"]))
    return Succeeded(datetime.fromisoformat(item["succeeded"]))
