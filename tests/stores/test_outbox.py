"""The outbox of every store: each effect is counted once, whoever committed it."""

from __future__ import annotations

import asyncio

from consumer.core.submission import SubmissionStatus
from consumer.core.tracker import Claimed, DurationMeasured, Finished, Origin, State, Succeeded
from consumer.ports import Store
from tests.support.records import NOW, obs, submission
from tests.support.stores import OpenStore


def finished(claimed: list[Claimed]) -> list[tuple[int, State]]:
    return sorted(
        (c.record.sis_batch_id, e.state) for c in claimed for e in c.effects if isinstance(e, Finished)
    )


async def test_what_a_daemon_commits_it_counts_itself_so_nothing_is_left_to_claim(store: Store) -> None:
    applied = await store.apply(obs(State.IMPORTED, 5), NOW)

    assert any(isinstance(e, Finished) for e in applied.effects)
    assert await store.claim_effects() == []


async def test_a_finish_a_command_committed_is_claimed_once_by_a_daemon(open_store: OpenStore) -> None:
    async with open_store(owner=None) as command:
        await command.apply(obs(State.CREATED, 0), NOW)
        await command.apply(obs(State.IMPORTED, 5, source="api"), NOW)

    async with open_store() as daemon:
        claimed = await daemon.claim_effects()
        again = await daemon.claim_effects()

    assert finished(claimed) == [(101, State.IMPORTED)]
    effects = [type(e) for c in claimed for e in c.effects]
    assert DurationMeasured in effects
    assert Succeeded in effects
    assert again == []


async def test_two_daemons_claiming_at_once_count_each_effect_once(open_store: OpenStore) -> None:
    async with open_store(owner=None) as command:
        for batch in range(1, 9):
            await command.apply(obs(State.FAILED, 5, batch=batch), NOW)

    async with open_store(owner="daemon-a") as a, open_store(owner="daemon-b") as b:
        claims = await asyncio.gather(a.claim_effects(), b.claim_effects(), a.claim_effects())

    assert sorted(f for c in claims for f in finished(c)) == [(batch, State.FAILED) for batch in range(1, 9)]


async def test_effects_of_a_submission_answer_are_claimed_with_the_submitted_origin(
    open_store: OpenStore,
) -> None:
    async with open_store(owner=None) as command:
        submission_id = await command.record_submission(submission())
        await command.answer_submission(
            submission_id,
            status=SubmissionStatus.ACCEPTED,
            now=NOW,
            observation=obs(State.IMPORTED, 9, source="api", request_id=None),
        )

    async with open_store() as daemon:
        claimed = await daemon.claim_effects()

    assert finished(claimed) == [(101, State.IMPORTED)]
    assert {c.record.origin for c in claimed} == {Origin.SUBMITTED}
