"""Canvas's request throttle: a leaky bucket per access token (docs/canvas.md, "Throttling"). Pure.

Like Canvas, a request is refused when the bucket is already at or above capacity; an accepted
request adds its cost even if that takes the bucket past capacity, and the bucket drains at a
constant rate. So a client is throttled after a burst, not on the request that crosses the line.
The refusal is `RequestThrottle#rate_limit_exceeded`: plain text, no `X-Request-Cost` (nothing ran).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    cost: float
    remaining: float

    def headers(self) -> dict[str, str]:
        remaining = {"X-Rate-Limit-Remaining": f"{self.remaining:.4f}"}
        return {"X-Request-Cost": f"{self.cost:.4f}", **remaining} if self.allowed else remaining


@dataclass(slots=True)
class LeakyBucket:
    capacity: float
    leak_per_second: float
    level: float = 0.0
    last: float | None = None

    def _drain(self, now: float) -> None:
        if self.last is not None:
            self.level = max(0.0, self.level - self.leak_per_second * max(0.0, now - self.last))
        self.last = now

    def remaining(self, now: float) -> float:
        self._drain(now)
        return max(0.0, self.capacity - self.level)

    def charge(self, cost: float, now: float) -> Verdict:
        self._drain(now)
        if self.level >= self.capacity:
            return Verdict(allowed=False, cost=0.0, remaining=0.0)
        self.level += cost
        return Verdict(allowed=True, cost=cost, remaining=max(0.0, self.capacity - self.level))


@dataclass(slots=True)
class Throttle:
    """One bucket per token, created on first use."""

    capacity: float
    leak_per_second: float
    cost: float
    buckets: dict[str, LeakyBucket]

    @classmethod
    def new(cls, capacity: float, leak_per_second: float, cost: float) -> Throttle:
        return cls(capacity=capacity, leak_per_second=leak_per_second, cost=cost, buckets={})

    def charge(self, token: str, now: float) -> Verdict:
        bucket = self.buckets.get(token)
        if bucket is None:
            bucket = self.buckets[token] = LeakyBucket(self.capacity, self.leak_per_second)
        return bucket.charge(self.cost, now)

    def untouched(self) -> Verdict:
        """For responses no token is charged for (401): the headers still go out."""
        return Verdict(allowed=True, cost=0.0, remaining=self.capacity)


def throttled_body(status: int) -> str:
    """Canvas's source answers 403 with this body; its docs say 429 (the same body, by analogy)."""
    reason = {403: "Forbidden", 429: "Too Many Requests"}[status]
    return f"{status} {reason} (Rate Limit Exceeded)\n"
