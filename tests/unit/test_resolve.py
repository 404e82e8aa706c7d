"""`consumer.core.resolve.resolution`: the operator's word on an import, or why it cannot be taken."""

from __future__ import annotations

import pytest

from consumer.core.resolve import Unresolvable, resolution
from consumer.core.tracker import State, apply
from tests.support.records import ACCOUNT, NOW, obs

KEY = (ACCOUNT, 101)


def test_an_unfinished_import_resolves_to_an_operator_observation_at_now() -> None:
    running = apply(None, obs(State.IMPORTING, 0), NOW).record

    found = resolution(running, KEY, State.ABORTED, "  aborted in the Canvas UI by jdoe  ", NOW)

    assert (found.account, found.sis_batch_id, found.state, found.at) == (ACCOUNT, 101, State.ABORTED, NOW)
    assert (found.source, found.note, found.account_id) == (
        "operator",
        "aborted in the Canvas UI by jdoe",
        "1",
    )


def test_resolving_finishes_the_import_with_exactly_one_finish() -> None:
    running = apply(None, obs(State.IMPORTING, 0), NOW).record

    applied = apply(running, resolution(running, KEY, State.FAILED, "job died", NOW), NOW)

    assert (applied.record.state, applied.record.outcome) == (State.FAILED, State.FAILED)
    assert [type(e).__name__ for e in applied.effects].count("Finished") == 1


def test_an_import_not_in_the_store_cannot_be_resolved() -> None:
    with pytest.raises(Unresolvable, match="is not in the store"):
        resolution(None, KEY, State.ABORTED, "why", NOW)


def test_a_finished_import_cannot_be_resolved_again() -> None:
    finished = apply(None, obs(State.IMPORTED, 5), NOW).record

    with pytest.raises(Unresolvable, match=r"has finished already \(imported\)"):
        resolution(finished, KEY, State.ABORTED, "why", NOW)


@pytest.mark.parametrize("why", ["", "   ", "x" * 501])
def test_a_reason_is_required_and_short(why: str) -> None:
    running = apply(None, obs(State.IMPORTING, 0), NOW).record

    with pytest.raises(Unresolvable, match="--why"):
        resolution(running, KEY, State.ABORTED, why, NOW)


def test_only_a_finished_state_can_be_the_resolution() -> None:
    running = apply(None, obs(State.IMPORTING, 0), NOW).record

    with pytest.raises(Unresolvable, match="not created"):
        resolution(running, KEY, State.CREATED, "why", NOW)
