"""`consumer.core.backoff.backoff_seconds`: exponential backoff with full jitter."""

from __future__ import annotations

import math

import pytest

from consumer.core.backoff import backoff_seconds

JUST_BELOW_ONE = math.nextafter(1.0, 0.0)


def always(value: float) -> float:
    return value


@pytest.mark.parametrize("attempt", range(1, 12))
def test_rand_zero_gives_no_delay(attempt: int) -> None:
    assert backoff_seconds(attempt, rand=lambda: 0.0) == 0.0


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (5, 16.0), (6, 32.0)],
)
def test_rand_just_below_one_approaches_base_times_two_to_attempt_minus_one(
    attempt: int, ceiling: float
) -> None:
    delay = backoff_seconds(attempt, rand=lambda: JUST_BELOW_ONE)

    assert delay < ceiling
    assert delay == pytest.approx(ceiling)


@pytest.mark.parametrize("attempt", [7, 8, 20, 63, 64, 1000, 10**9])
def test_delay_is_capped(attempt: int) -> None:
    delay = backoff_seconds(attempt, rand=lambda: JUST_BELOW_ONE)

    assert delay < 60.0
    assert delay == pytest.approx(60.0)


def test_custom_base_and_cap_scale_the_ceiling() -> None:
    delays = [backoff_seconds(n, base=0.5, cap=3.0, rand=lambda: 0.5) for n in range(1, 6)]

    assert delays == [0.25, 0.5, 1.0, 1.5, 1.5]


def test_delay_is_rand_times_the_ceiling() -> None:
    assert backoff_seconds(3, rand=lambda: 0.25) == 1.0


@pytest.mark.parametrize("attempt", range(1, 40))
def test_default_rand_stays_within_zero_and_the_ceiling(attempt: int) -> None:
    delay = backoff_seconds(attempt)

    assert 0.0 <= delay < min(60.0, 2.0 ** (attempt - 1))


@pytest.mark.parametrize("attempt", [0, -1, -100])
def test_attempt_below_one_raises(attempt: int) -> None:
    with pytest.raises(ValueError, match="1-based"):
        backoff_seconds(attempt, rand=lambda: 0.0)
