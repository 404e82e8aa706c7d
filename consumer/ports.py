"""The interfaces the worker and watchdog depend on; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from consumer.core.states import State
from consumer.core.tracker import Applied, ImportRecord, Observation


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ImportStore(Protocol):
    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        """Fold one observation into its import in one transaction, journal it, return the result.

        Raises `StoreUnavailable` when the write cannot be made now.
        """
        ...

    async def records(
        self, *, state: State | None = None, since: datetime | None = None
    ) -> Sequence[ImportRecord]:
        """Imports, newest first; `since` filters on first sight."""
        ...

    async def unfinished(self) -> Sequence[ImportRecord]:
        """Imports Canvas may still be working on."""
        ...

    async def last_successes(self) -> dict[str, datetime]:
        """Per account, when its latest successful import finished."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` when the store cannot be read."""
        ...
