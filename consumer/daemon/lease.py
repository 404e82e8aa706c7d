"""One leader among the replicas: only it talks to Canvas about imports and counts others' effects.

The shape of awslabs' DynamoDB Lock Client and client-go's leader election. The lease is one item:
its holder, a record version number (`rvn`) that changes at every renewal, and a fencing token that
grows at every change of holder. No clock is compared across hosts:

- the holder renews every third of the lease, and stops leading when a renewal has not succeeded
  for two thirds of it (the renew deadline), well before anyone may take over;
- a contender takes over only after it has seen the same rvn for a whole lease period, with a write
  conditioned on that rvn, so two contenders cannot both win;
- a holder that stops gracefully deletes the lease, and the next contender takes it at once.

A dead holder is replaced within a third (first sight) + a whole lease + a third (poll period) of
its last renewal: 1.7 x the lease, inside the 2 x promised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable

import structlog

from consumer.daemon.loops import every
from consumer.errors import ConsumerError
from consumer.ports import LeaseState, LeaseStore, LeaseToken

log = structlog.get_logger("sis_consumer.lease")

RECONCILER = "reconciler"


class Leadership:
    """Whether this process leads now; `run` keeps the answer true, or makes it false in time."""

    def __init__(
        self,
        store: LeaseStore,
        owner: str,
        *,
        name: str = RECONCILER,
        duration: float = 30.0,
        on_change: Callable[[bool], None] = lambda _leading: None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._name = name
        self._owner = owner
        self._duration = duration
        self._on_change = on_change
        self._monotonic = monotonic
        self._held: LeaseState | None = None
        self._deadline = 0.0
        self._seen: tuple[str, float] | None = None
        """The rvn a contender saw last, and when it first saw it."""
        self._announced = False

    @property
    def token(self) -> LeaseToken | None:
        """The lease while this process may act as leader, else None."""
        if self._held is None or self._monotonic() >= self._deadline:
            return None
        return LeaseToken(self._name, self._held)

    @property
    def leading(self) -> bool:
        return self.token is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Hold or contend for the lease until `stop`; then give it up."""
        try:
            # Only the store's errors are survived: the deadline decides what they cost. A bug
            # ends the daemon rather than leave it leading, or not, on a lease it cannot reason about.
            await every(
                self._duration / 3,
                self._tick,
                stop,
                failed="lease.step_failed",
                survive=(ConsumerError,),
                lease=self._name,
            )
        finally:
            await self.release()

    async def _tick(self) -> None:
        try:
            await self.step()
        finally:  # a lease can lapse while the store is down: say so even when the step failed
            if self.leading != self._announced:
                self._announce()

    async def step(self) -> None:
        """One renewal, or one look at the lease (and a takeover when its holder has gone quiet)."""
        started = self._monotonic()
        if self._held is not None:
            renewed = LeaseState(self._owner, _rvn(), self._held.fence)
            if await self._store.replace_lease(self._name, renewed, self._held.rvn):
                self._hold(renewed, started)
            else:
                self._held = None  # somebody took it: stop at once
            return
        current = await self._store.read_lease(self._name)
        if current is None:
            fresh = LeaseState(self._owner, _rvn(), 1)
            if await self._store.create_lease(self._name, fresh):
                self._hold(fresh, started)
            return
        if self._seen is None or self._seen[0] != current.rvn:
            self._seen = (current.rvn, started)
            return
        if started - self._seen[1] >= self._duration:
            taken = LeaseState(self._owner, _rvn(), current.fence + 1)
            if await self._store.replace_lease(self._name, taken, current.rvn):
                log.info("lease.taken_over", lease=self._name, previous=current.owner, fence=taken.fence)
                self._hold(taken, started)

    async def release(self) -> None:
        held, self._held = self._held, None
        if held is None:
            return
        with contextlib.suppress(ConsumerError):
            await self._store.delete_lease(self._name, held.rvn)
        if self._announced:
            self._announce()

    def _hold(self, state: LeaseState, started: float) -> None:
        # Counted from before the request: the write may have landed at any moment of the call.
        self._held, self._seen = state, None
        self._deadline = started + self._duration * 2 / 3

    def _announce(self) -> None:
        leading = self._announced = self.leading
        log.info("lease.leading" if leading else "lease.following", lease=self._name, owner=self._owner)
        self._on_change(leading)


class SoleLeader:
    """The leadership of a store only one process uses (SQLite): always held, no lease to fence."""

    leading = True
    token: LeaseToken | None = None

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()


def _rvn() -> str:
    return uuid.uuid4().hex
