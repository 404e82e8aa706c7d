"""`consumer.ack.retry_delay`: how long a message the store could not take stays hidden.

The schedule is a floor that doubles from 10 s to 15 min, plus up to 10% jitter on top, never
below: the README's table and the queue's `maxReceiveCount` are computed from the floor.
"""

from __future__ import annotations

import math

import pytest

from consumer.ack import retry_delay, retry_floor, ride_out_seconds

JUST_BELOW_ONE = math.nextafter(1.0, 0.0)
FLOORS = [10, 20, 40, 80, 160, 320, 640, 900, 900, 900, 900]


@pytest.mark.parametrize(("receive", "floor"), list(enumerate(FLOORS, start=1)))
def test_the_floor_doubles_from_ten_seconds_to_fifteen_minutes(receive: int, floor: int) -> None:
    assert retry_floor(receive) == floor


@pytest.mark.parametrize("receive", range(1, 12))
def test_jitter_adds_up_to_a_tenth_and_never_takes_away(receive: int) -> None:
    low = retry_delay(receive, rand=lambda: 0.0)
    high = retry_delay(receive, rand=lambda: JUST_BELOW_ONE)

    assert low == retry_floor(receive)
    assert high == round(retry_floor(receive) * 1.1)


def test_a_receive_count_in_the_thousands_stays_at_the_cap() -> None:
    assert retry_delay(5000, rand=lambda: 0.0) == 900


def test_ten_receives_ride_out_fifty_one_minutes() -> None:
    """The tenth receive, the last before the redrive, comes 3,070 s after the first at the earliest."""
    assert ride_out_seconds(10) == sum(FLOORS[:9]) == 3070
