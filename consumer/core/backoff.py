"""Exponential backoff with full jitter, as a pure function.

"Full jitter" draws the whole delay at random below an exponential ceiling, unlike libraries such
as stamina that add a small jitter on top of the exponential delay: clients that failed together
spread over the whole window instead of retrying in a tight bunch.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_seconds(
    attempt: int,
    *,
    base: float = 1.0,
    cap: float = 60.0,
    rand: Callable[[], float] = random.random,
) -> float:
    """Delay before try number `attempt` (1-based): uniform in [0, min(cap, base * 2**(attempt-1))].

    Full jitter spreads many clients that failed together (a queue outage, a throttled Canvas).
    """
    if attempt < 1:
        raise ValueError("attempt is 1-based")
    ceiling = min(cap, base * 2.0 ** min(attempt - 1, 62))
    return ceiling * rand()
