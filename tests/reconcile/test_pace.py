"""`pace`: the wait between two reconciliation requests, stretched as Canvas's bucket runs low."""

from __future__ import annotations

import pytest

from consumer.core.reconcile import MAX_PACE, pace


def test_spacing_alone_until_canvas_has_said_what_is_left() -> None:
    assert pace(0.5, None, None) == 0.5


def test_spacing_alone_while_the_bucket_is_untouched() -> None:
    assert pace(0.5, 700.0, 700.0) == 0.5


@pytest.mark.parametrize(("remaining", "factor"), [(350.0, 2.0), (70.0, 10.0), (7.0, 100.0)])
def test_the_wait_grows_as_the_bucket_empties(remaining: float, factor: float) -> None:
    assert pace(0.1, remaining, 700.0) == pytest.approx(0.1 * factor)


def test_an_empty_bucket_waits_at_most_max_pace() -> None:
    assert pace(1.0, 0.0, 700.0) == MAX_PACE
