"""Hostile SQS message bodies, generated from the real shapes of Canvas Live Events.

`Mutator(seed).bodies(n)` yields `n` bodies: untouched events (so that imports are created,
duplicated and reordered), and events put through one to three mutations — truncation, deep
nesting, huge numbers, wrong types, lone surrogates, strings around the 256 KB limit, SNS envelopes
around garbage, random characters — the damage a broken producer, a proxy or an attacker can do.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from consumer.core.events import MAX_BODY_CHARS
from consumer.core.tracker import ALL_STATES
from tests.support.live_events import other_event, sis_event, sns_wrapped

ACCOUNTS = ("acct-a", "acct-b", "acct-c")
"""Few accounts and few ids: the same imports come back, as duplicates and out of order."""
BATCHES = 200
STATES = sorted(ALL_STATES)
START = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
OTHER_NAMES = ("logged_in", "asset_accessed", "submission_created", "course_created", "")
PATHS = (
    ("metadata", "event_name"),
    ("metadata", "event_time"),
    ("metadata", "root_account_uuid"),
    ("metadata", "root_account_id"),
    ("metadata", "request_id"),
    ("metadata", "developer_key_id"),
    ("metadata", "user_agent"),
    ("metadata", "url"),
    ("body", "sis_batch_id"),
    ("body", "account_id"),
    ("body", "workflow_state"),
    ("metadata",),
    ("body",),
)
HUGE_NUMBERS = (
    str(2**63 - 1),
    str(2**63),
    str(2**64),
    "-1",
    "-0",
    "1e308",
    "1.5",
    "10" * 20,
    "9" * 4301,
    "9" * 20_000,
    "NaN",
    "Infinity",
)
WEIRD_TIMES = (
    "9999-12-31T23:59:59Z",
    "0001-01-01T00:00:00+14:00",
    "2024-02-30T00:00:00Z",
    "2026-11-24T02:00:00.123456789Z",
    "2026-11-24",
    "",
    "now",
    "2026-11-24T02:00:00+99:00",
    "\u0662\u0660\u0662\u0666-11-24T02:00:00Z",
)
DEEP = tuple(
    text
    for depth in (2, 64, 500, 1000, 5000, 100_000)
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth)
)
"""Nesting from harmless to far past any recursion limit (built once: the bodies share them)."""
BIG_STRINGS = tuple(json.dumps("s" * (MAX_BODY_CHARS + delta)) for delta in (-2600, -1000, -600, 0, 1400))
"""JSON strings that bring a body just under, at and just over the size limit."""
NOISE = ('"', "\\", "{", "}", "[", "]", ",", ":", "\x00", "\n", "\u2028", "\ufeff", "\udcff", "é", "🙂")


def _raw(slot: int) -> str:
    return f"__RAW{slot}__"


class Mutator:
    """Bodies from a seeded `random.Random`: the same seed gives the same bodies."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._raws: list[str] = []
        self._mutations: tuple[Callable[[dict[str, Any]], None], ...] = (
            self._wrong_type,
            self._delete,
            self._huge_number,
            self._deep,
            self._surrogate,
            self._big_string,
            self._weird_time,
            self._junk_state,
            self._event_name,
        )

    def bodies(self, n: int) -> Iterator[str]:
        for _ in range(n):
            yield self.body()

    def body(self) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            return self._sis_text()
        if roll < 0.25:
            return other_event(self.rng.choice(OTHER_NAMES[:-1]), self.rng.randrange(1000))
        if roll < 0.30:
            return self._not_an_object()
        event = json.loads(self._sis_text() if self.rng.random() < 0.8 else self._other_text())
        self._raws = []
        for _ in range(self.rng.randint(1, 3)):
            self.rng.choice(self._mutations)(event)
        text = json.dumps(event)
        for slot, raw in enumerate(self._raws):
            text = text.replace(json.dumps(_raw(slot)), raw)
        return self._text_mutation(text)

    # -- untouched shapes ------------------------------------------------------------------------

    def _sis_text(self) -> str:
        batch = self.rng.randrange(1, BATCHES)
        return sis_event(
            account_uuid=self.rng.choice(ACCOUNTS),
            account_id=self.rng.randrange(1, 4),
            sis_batch_id=batch,
            state=self.rng.choice(STATES),
            at=START + timedelta(seconds=self.rng.randrange(0, 86400)),
            request_id=f"req-{batch}",
            url_token="7~FuzzTokenNeverLogged" if self.rng.random() < 0.1 else None,
        )

    def _other_text(self) -> str:
        return other_event(self.rng.choice(OTHER_NAMES), self.rng.randrange(1000))

    def _not_an_object(self) -> str:
        return self.rng.choice(
            ["", " ", "null", "0", "-1", "[]", "[{}]", '"metadata"', "true", "{}", '{"metadata": null}']
        )

    # -- mutations of the decoded event ----------------------------------------------------------

    def _target(self, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
        path = self.rng.choice(PATHS)
        node: Any = event
        for key in path[:-1]:
            if not isinstance(node.get(key), dict):
                node[key] = {}
            node = node[key]
        return node, path[-1]

    def _put_raw(self, event: dict[str, Any], raw: str) -> None:
        node, key = self._target(event)
        node[key] = _raw(len(self._raws))
        self._raws.append(raw)

    def _wrong_type(self, event: dict[str, Any]) -> None:
        node, key = self._target(event)
        node[key] = self.rng.choice([0, -7, 3.25, True, False, None, [], ["1"], {}, {"a": 1}, "", "x" * 40])

    def _delete(self, event: dict[str, Any]) -> None:
        node, key = self._target(event)
        node.pop(key, None)

    def _huge_number(self, event: dict[str, Any]) -> None:
        number = self.rng.choice(HUGE_NUMBERS)
        if self.rng.random() < 0.5:
            self._put_raw(event, number)  # a JSON number token
        else:
            node, key = self._target(event)
            node[key] = number  # a string of digits, as Canvas sends ids

    def _deep(self, event: dict[str, Any]) -> None:
        self._put_raw(event, self.rng.choice(DEEP))

    def _surrogate(self, event: dict[str, Any]) -> None:
        node, key = self._target(event)
        node[key] = self.rng.choice(["\ud800", "\udfff", "a\ud83dz", "\ud83d\ude42", "\x00"])

    def _big_string(self, event: dict[str, Any]) -> None:
        self._put_raw(event, self.rng.choice(BIG_STRINGS))

    def _weird_time(self, event: dict[str, Any]) -> None:
        event.setdefault("metadata", {})
        if isinstance(event["metadata"], dict):
            event["metadata"]["event_time"] = self.rng.choice(WEIRD_TIMES)

    def _junk_state(self, event: dict[str, Any]) -> None:
        event.setdefault("body", {})
        if isinstance(event["body"], dict):
            event["body"]["workflow_state"] = self.rng.choice([*STATES, "IMPORTED", "done", "", " imported"])

    def _event_name(self, event: dict[str, Any]) -> None:
        event.setdefault("metadata", {})
        if isinstance(event["metadata"], dict):
            event["metadata"]["event_name"] = self.rng.choice(
                ["sis_batch_created", "sis_batch_updated", "SIS_BATCH_UPDATED", "sis_batch", *OTHER_NAMES]
            )

    # -- mutations of the text -------------------------------------------------------------------

    def _text_mutation(self, text: str) -> str:
        roll = self.rng.random()
        if roll < 0.15:
            return text[: self.rng.randrange(0, len(text) + 1)]
        if roll < 0.30:
            for _ in range(self.rng.randint(1, 5)):
                at = self.rng.randrange(0, len(text) + 1)
                text = text[:at] + self.rng.choice(NOISE) + text[at:]
            return text
        if roll < 0.40:
            return sns_wrapped(text if self.rng.random() < 0.7 else self._garbage())
        if roll < 0.45:
            return json.dumps({"Type": "Notification", "Message": self.rng.choice([None, 1, [], {}, text])})
        if roll < 0.50:
            return (
                text[:-1] + ', "metadata": {"event_name": "sis_batch_updated"}}'
                if text.endswith("}")
                else text
            )
        return text

    def _garbage(self) -> str:
        return self.rng.choice(
            ["", "{", "[" * 3000, "not json", sns_wrapped(sns_wrapped("{}")), '{"metadata": "x"}', "\udcff"]
        )
