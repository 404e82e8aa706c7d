"""The leader lease on DynamoDB: one holder at a time, renewals, takeover of a silent holder, fencing.

Time is a hand-moved monotonic clock per contender; the lease item itself is real.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from consumer.adapters.lease_dynamodb import DynamoLeases
from consumer.adapters.store_dynamodb import DynamoStore, open_dynamodb
from consumer.core.tracker import State
from consumer.daemon.lease import Leadership, SoleLeader
from consumer.errors import StoreUnavailable
from consumer.ports import LeaseState
from consumer.sandbox.local_sqs import REGION
from tests.support.dynamodb import create_table, new_table_name
from tests.support.records import NOW, obs

LEASE = 30.0


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


@pytest.fixture
async def table(aws: None) -> AsyncIterator[DynamoStore]:
    name = new_table_name()
    await create_table(name)
    async with open_dynamodb(name, region=REGION, owner="test") as store:
        yield store


def contender(store: DynamoStore, owner: str, clock: Clock) -> Leadership:
    return Leadership(DynamoLeases(store.db), owner, duration=LEASE, monotonic=clock)


async def test_the_first_contender_leads_and_the_second_follows(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)

    await a.step()
    await b.step()

    assert (a.leading, b.leading) == (True, False)
    assert a.token is not None
    assert a.token.state.fence == 1


async def test_a_renewing_holder_keeps_the_lease_for_ever(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)
    await a.step()

    for _ in range(12):  # four lease periods, a renewal every third of one
        clock.t += LEASE / 3
        await a.step()
        await b.step()

    assert (a.leading, b.leading) == (True, False)


async def test_a_silent_holder_is_replaced_after_one_lease_and_not_before(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)
    await a.step()
    await b.step()  # b sees a's rvn for the first time

    clock.t += LEASE - 0.1
    await b.step()
    assert not b.leading

    clock.t += 0.1
    await b.step()
    assert b.leading
    assert b.token is not None
    assert b.token.state.fence == 2


async def test_a_holder_that_cannot_renew_stops_leading_before_anyone_may_take_over(
    table: DynamoStore,
) -> None:
    clock = Clock()
    a = contender(table, "a", clock)
    await a.step()

    clock.t += LEASE * 2 / 3 - 0.01
    assert a.leading
    clock.t += 0.01  # no renewal got through since: the renew deadline has passed
    assert not a.leading


async def test_a_holder_that_was_replaced_learns_it_at_its_next_renewal(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)
    await a.step()
    await b.step()
    clock.t += LEASE
    await b.step()  # a was silent (paused, partitioned): b took over

    await a.step()

    assert (a.leading, b.leading) == (False, True)


async def test_a_released_lease_is_taken_at_the_next_look(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)
    await a.step()
    await b.step()

    await a.release()
    await b.step()

    assert (a.leading, b.leading) == (False, True)


async def test_two_contenders_racing_for_a_free_lease_cannot_both_win(table: DynamoStore) -> None:
    leases = DynamoLeases(table.db)

    first = await leases.create_lease("race", LeaseState("a", "r1", 1))
    second = await leases.create_lease("race", LeaseState("b", "r2", 1))

    assert (first, second) == (True, False)
    assert not await leases.replace_lease("race", LeaseState("b", "r3", 2), expected_rvn="stale")


async def test_a_claim_fenced_by_a_lost_lease_claims_nothing(table: DynamoStore) -> None:
    clock = Clock()
    a, b = contender(table, "a", clock), contender(table, "b", clock)
    await a.step()
    stale = a.token
    await b.step()
    clock.t += LEASE
    await b.step()
    async with open_dynamodb(table.db.table, region=REGION, owner=None) as command:
        await command.apply(obs(State.IMPORTED, 5), NOW)

    assert await table.claim_effects(lease=stale) == []
    assert len(await table.claim_effects(lease=b.token)) == 1


def test_with_one_process_on_the_store_it_always_leads() -> None:
    assert SoleLeader().leading


async def test_a_store_outage_during_a_step_raises_for_the_loop_to_log() -> None:
    class Down:
        async def read_lease(self, name: str) -> LeaseState | None:
            raise StoreUnavailable("dynamodb: down")

        async def create_lease(self, name: str, state: LeaseState) -> bool:
            raise AssertionError("not reached")

        async def replace_lease(self, name: str, state: LeaseState, expected_rvn: str) -> bool:
            raise AssertionError("not reached")

        async def delete_lease(self, name: str, expected_rvn: str) -> bool:
            raise AssertionError("not reached")

    leadership = Leadership(Down(), "a", duration=LEASE)

    with pytest.raises(StoreUnavailable):
        await leadership.step()
    assert not leadership.leading
