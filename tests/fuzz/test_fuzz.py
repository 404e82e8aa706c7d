"""The fuzz campaign: 100,000+ hostile bodies per run, none of which may crash the handler.

Each body goes through `decode` and the real `MessageHandler` with a real SQLite store, and must
end in exactly one counted result (applied, duplicate, stale, ignored, rejected, invalid) and an ack
or a dead-letter with a reason. The seed changes every run (a campaign should explore); a failure
names it: rerun with `SIS_CONSUMER_FUZZ_SEED=<seed>` to get the same bodies.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumer.core.events import MAX_BODY_CHARS
from tests.fuzz.bodies import ACCOUNTS, OTHER_NAMES, STATES, WEIRD_TIMES, Mutator
from tests.fuzz.campaign import Campaign, Problem

BODIES = 100_000
EXAMPLES = 1_000


def report(problems: list[Problem], seed: int | str) -> str:
    kinds: dict[str, Problem] = {}
    for p in problems:
        kinds.setdefault(p.what.split("(")[0], p)
    lines = [f"{len(problems)} bodies broke the rules (seed {seed}); one of each kind:"]
    lines += [f"  #{p.index}: {p.what}\n    body: {p.body!r}" for p in kinds.values()]
    return "\n".join(lines)


@pytest.mark.timeout(900)  # about a minute of CPU; far longer on a loaded CI machine
def test_a_hundred_thousand_mutated_events_each_end_in_one_counted_result(tmp_path: Path) -> None:
    seed = int(os.environ.get("SIS_CONSUMER_FUZZ_SEED") or random.randrange(2**32))
    mutator = Mutator(seed)
    started = time.process_time()
    with Campaign(tmp_path) as campaign:
        for index, body in enumerate(mutator.bodies(BODIES)):
            campaign.run(index, body, strict=index % 5 == 0)
            if index % 10_000 == 9_999:
                campaign.checkpoint()
        records = campaign.loop_records()
    cpu = time.process_time() - started

    print(f"\nfuzz: {BODIES} bodies, seed {seed}, {cpu:.1f} s CPU, {dict(campaign.tally)}")
    assert campaign.problems == [], report(campaign.problems, seed)
    assert sum(campaign.tally.values()) == BODIES
    assert {"applied", "duplicate", "stale", "ignored", "rejected", "invalid"} <= set(campaign.tally)
    assert campaign.sink.leaks == 0
    assert records > 0  # the store still reads back what it took


def json_values() -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30)
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    )


def ids() -> st.SearchStrategy[Any]:
    return st.integers() | st.integers(min_value=0).map(str) | st.text(max_size=25) | json_values()


EVENTS = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {
                "event_name": st.sampled_from(["sis_batch_created", "sis_batch_updated", *OTHER_NAMES])
                | json_values(),
                "event_time": st.sampled_from(WEIRD_TIMES)
                | st.datetimes().map(lambda d: d.isoformat())
                | json_values(),
                "root_account_uuid": st.sampled_from(ACCOUNTS) | json_values(),
            },
            optional={"request_id": st.text(max_size=300) | json_values(), "user_agent": json_values()},
        )
        | json_values(),
        "body": st.fixed_dictionaries(
            {
                "sis_batch_id": ids(),
                "account_id": ids(),
                "workflow_state": st.sampled_from(STATES) | st.text(),
            }
        )
        | json_values(),
    }
)
BODY_TEXT = st.one_of(
    EVENTS.map(json.dumps),
    EVENTS.map(lambda e: json.dumps({"Type": "Notification", "Message": json.dumps(e)})),
    json_values().map(json.dumps),
    st.text(st.characters(codec=None), max_size=300),
    st.integers(min_value=0, max_value=MAX_BODY_CHARS + 10).map(lambda n: "x" * n),
)


@pytest.mark.timeout(600)
def test_structured_bodies_from_hypothesis_each_end_in_one_counted_result(tmp_path: Path) -> None:
    with Campaign(tmp_path) as campaign:
        examples = iter(range(10**9))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(BODY_TEXT, st.booleans())
        def each(body: str, strict: bool) -> None:
            campaign.run(next(examples), body, strict)

        each()

    print(f"\nfuzz (hypothesis): {sum(campaign.tally.values())} bodies, {dict(campaign.tally)}")
    assert campaign.problems == [], report(campaign.problems, "hypothesis")
    assert sum(campaign.tally.values()) >= EXAMPLES
