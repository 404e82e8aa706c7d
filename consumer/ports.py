"""The interfaces the daemon's loops and commands depend on; adapters implement them.

`app`, `handler`, `worker`, `watchdog`, `reconciler` and `submit` see only these Protocols, so a
store (SQLite or DynamoDB), the queue and Canvas can be swapped without touching them. The store is
split by role; `Store` is all of them, what `open_store` yields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from consumer.ack import Message
from consumer.core.learned import AccountHistory
from consumer.core.stuck import StuckReason, StuckVerdict
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import Applied, Claimed, ImportRecord, Observation, State


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ImportStore(Protocol):
    """The imports: one record per `(root account UUID, sis_batch_id)`, changed only by `apply`."""

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        """Fold one observation into its import atomically, journal it, return the result.

        Raises `StoreUnavailable` when the write cannot be made now.
        """
        ...

    async def record(self, account: str, sis_batch_id: int) -> ImportRecord | None: ...

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

    async def histories(self) -> dict[str, AccountHistory]:
        """Per account with a success: the latest success and its latest successful runs, newest
        first (`core.learned`). Read by the watchdog at every pass: no Scan."""
        ...

    async def last_event_received(self) -> datetime | None:
        """When the latest Live Event was recorded: seeds the last-event gauge after a restart."""
        ...

    async def note_last_event(self, at: datetime) -> None:
        """Remember when a Live Event was last received (the latest time wins)."""
        ...

    async def expected_since(self, accounts: Sequence[str], now: datetime) -> dict[str, datetime]:
        """When a daemon on this store first expected successes of each of `accounts`
        (SIS_CONSUMER_EXPECT_SUCCESS_EVERY); `now` is written down for those never expected
        before. An account's schedule counts from there until it succeeds, whatever restarts."""
        ...

    async def ping(self) -> None:
        """Raise `StoreUnavailable` when the store cannot be read."""
        ...

    async def flush(self) -> None:
        """Make every commit so far durable: called before the messages behind them are deleted.

        Raises `StoreUnavailable` when that cannot be promised (the messages are then retried).
        """
        ...

    async def journal(self, account: str, sis_batch_id: int) -> list[JournalEntry]:
        """Every observation of one import the journal still holds, oldest first."""
        ...


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One observation as the journal recorded it."""

    recorded_at: datetime
    source: str
    state: State
    observed_at: datetime
    verdict: str
    message_id: str | None = None
    note: str | None = None
    """An operator's reason (`sis-consumer resolve`)."""


class SubmissionStore(Protocol):
    """What `submit` wrote down before and after each POST, and the accounts it learned."""

    async def record_submission(self, submission: Submission) -> int:
        """Write down what we are about to POST; returns the submission's id.

        The submission of a drop-folder object (`submission.source`) is also the claim on that
        object version, a conditional write: when the version was recorded before (a notification
        delivered twice, or to two replicas), nothing is written and `AlreadySubmitted` names the
        first submission.
        """
        ...

    async def answer_submission(
        self,
        submission_id: int,
        *,
        status: SubmissionStatus,
        now: datetime,
        http_status: int | None = None,
        error: str | None = None,
        request_id: str | None = None,
        observation: Observation | None = None,
    ) -> Applied | None:
        """Record the POST's answer; with the import it created (`observation`, from the answer),
        join it to the import's record atomically."""
        ...

    async def submission(self, submission_id: int) -> Submission | None: ...

    async def submissions(self) -> dict[tuple[str, int], Submission]:
        """Submissions that created an import, by that import's key."""
        ...

    async def cached_account(self, canvas_url: str, account_ref: str) -> tuple[str, str] | None:
        """(uuid, local id) of an account learned before, for this Canvas."""
        ...

    async def cache_account(
        self, canvas_url: str, account_ref: str, account: str, account_id: str
    ) -> None: ...


class IntakeStore(Protocol):
    """The drop folder's submissions after their POST: a claim given back, an outcome reported."""

    async def release_object(self, source: SourceObject) -> None:
        """Give back the claim on this object version (its POST never reached Canvas), so that the
        next notification of it submits it; the submission that held it is reported `retried`."""
        ...

    async def unreported(self, limit: int = 50) -> list[Submission]:
        """Drop-folder submissions whose outcome is not yet written back onto their object."""
        ...

    async def mark_reported(self, submission_id: int, status: str) -> None:
        """The outcome `status` was written onto the submission's object: stop following it."""
        ...


class ResultStore(Protocol):
    """What the finished SisImport said (counts, first warnings and errors), fetched once."""

    async def results_due(
        self, account: str, now: datetime, limit: int = 20
    ) -> list[tuple[ImportRecord, bool]]:
        """Finished imports of `account` whose result was never fetched, or is due its second
        look; with True for a second look."""
        ...

    async def save_result(
        self,
        account: str,
        sis_batch_id: int,
        summary: dict[str, Any],
        now: datetime,
        look_again_at: datetime | None,
    ) -> bool:
        """Store a fetched result; True the first time (when its messages are still to be counted)."""
        ...

    async def results(self) -> dict[tuple[str, int], dict[str, Any]]: ...


class StuckStore(Protocol):
    """The stuck verdicts of the daemon's watchdog, for the commands (`imports --stuck`) to read
    instead of judging again with their own environment's thresholds."""

    async def save_stuck(self, verdicts: Mapping[tuple[str, int], StuckReason], now: datetime) -> None:
        """Make the recorded verdicts `verdicts`: a new one (or a new reason) is recorded since
        `now`, an unchanged one keeps its time, the others are removed."""
        ...

    async def stuck(self) -> dict[tuple[str, int], StuckVerdict]:
        """The verdicts last recorded, by import key."""
        ...


class OutboxStore(Protocol):
    """Effects committed by a process that did not count them (see `tracker.Claimed`)."""

    async def claim_effects(self, lease: LeaseToken | None = None, limit: int = 100) -> list[Claimed]:
        """Claim uncounted effects for this store's owner, each exactly once across all daemons;
        the caller counts what it gets. With `lease`, only while that lease is still held."""
        ...


@dataclass(frozen=True, slots=True)
class LeaseState:
    """A lease as stored: who holds it, the version of its latest renewal, and its fencing token."""

    owner: str
    rvn: str
    """Changes at every renewal: a contender that sees it unchanged for a lease period takes over."""
    fence: int
    """Grows by one at every change of holder."""


@dataclass(frozen=True, slots=True)
class LeaseToken:
    name: str
    state: LeaseState


class Leader(Protocol):
    """Whether this process may act as the one leader now (`consumer.daemon.lease`)."""

    @property
    def leading(self) -> bool: ...

    @property
    def token(self) -> LeaseToken | None:
        """The lease it holds (for fenced writes); None with a store only one process uses."""
        ...


class LeaseStore(Protocol):
    """Conditional writes on one small item per lease (the leader election of `consumer.daemon.lease`)."""

    async def read_lease(self, name: str) -> LeaseState | None: ...

    async def create_lease(self, name: str, state: LeaseState) -> bool:
        """Write the lease if there is none; False when there is one."""
        ...

    async def replace_lease(self, name: str, state: LeaseState, expected_rvn: str) -> bool:
        """Renew or take over: write `state` if the lease's rvn is still `expected_rvn`."""
        ...

    async def delete_lease(self, name: str, expected_rvn: str) -> bool:
        """Give the lease up (on shutdown) if it is still at `expected_rvn`."""
        ...


@dataclass(frozen=True, slots=True)
class SavedResult:
    """A fetched result as stored, with when it was fetched."""

    account: str
    sis_batch_id: int
    summary: dict[str, Any]
    fetched_at: datetime
    look_again_at: datetime | None


@dataclass(frozen=True, slots=True)
class Export:
    """What `sis-consumer store copy` carries from one store to another."""

    records: list[ImportRecord]
    submissions: list[Submission]
    results: list[SavedResult]


class Store(ImportStore, SubmissionStore, IntakeStore, ResultStore, OutboxStore, StuckStore, Protocol):
    """Every role at once: what one store URL opens."""

    def leases(self) -> LeaseStore | None:
        """Where replicas sharing this store elect a leader; None: only one process uses it."""
        ...


class Queue(Protocol):
    """The Live Events queue. Batch calls return the messages they could not handle."""

    async def check(self) -> None:
        """Raise `QueueError` unless the queue exists and may be used."""
        ...

    async def receive(self, *, max_messages: int, wait_seconds: int, visibility: int) -> list[Message]: ...

    async def delete(self, messages: Sequence[Message]) -> list[Message]: ...

    async def change_visibility(self, delays: Sequence[tuple[Message, int]]) -> list[Message]: ...

    async def dead_letter(self, messages: Sequence[tuple[Message, str]]) -> list[Message]:
        """Copy each message to the DLQ with its reason; all come back when there is no DLQ."""
        ...


@dataclass(frozen=True, slots=True)
class FetchedObject:
    """An S3 object version as `GetObject` gave it."""

    size: int
    etag: str
    version_id: str | None
    content: bytes | None
    """None when it was larger than the caller's limit: the body was not read."""


class ObjectStorage(Protocol):
    """The drop folder's bucket. Failures raise `ObjectStoreError`; `ObjectGone` when the object
    (or that version) was deleted."""

    async def fetch(self, bucket: str, key: str, version_id: str | None, max_bytes: int) -> FetchedObject:
        """The object's bytes, unless it is larger than `max_bytes`."""
        ...

    async def tags(self, source: SourceObject) -> dict[str, str]: ...

    async def put_tags(self, source: SourceObject, tags: Mapping[str, str]) -> None:
        """Replace the tags of that object version with `tags`."""
        ...


@dataclass(frozen=True, slots=True)
class CanvasResponse:
    status: int
    body: Any
    request_id: str | None
    """`X-Request-Context-Id`: Canvas's id of this request, also in the events it caused."""
    next_url: str | None = None


class CanvasReader(Protocol):
    """What the reconciler asks Canvas: the accounts API and SisImport lookups, one request at a
    time per token.

    Failures raise `consumer.errors.CanvasError` subclasses; `retryable` ones may succeed later.
    """

    remaining: float | None
    """`X-Rate-Limit-Remaining` of the latest response."""
    most_remaining: float | None
    """The highest `X-Rate-Limit-Remaining` seen: about the size of the bucket."""
    token_refused: bool | None
    """Whether Canvas's latest answer to any call refused the token (401, or a 403 that is not
    throttling); None before the first answer that says."""

    async def account(self, account_id: str = "self") -> dict[str, Any]: ...

    async def sis_import(self, account_id: str, import_id: int) -> dict[str, Any]: ...


class Canvas(CanvasReader, Protocol):
    """The SIS Imports and accounts APIs: what `submit` needs too."""

    base_url: str

    async def create_sis_import(
        self,
        account_id: str,
        content: bytes,
        *,
        filename: str,
        params: Mapping[str, str],
        raw: bool = False,
        content_type: str = "application/zip",
    ) -> CanvasResponse: ...


class CanvasAdmin(Canvas, Protocol):
    """What the commands people run use besides: listing imports (to learn whether the token may
    read them) and downloading a file of an import (its errors CSV)."""

    async def sis_imports(
        self, account_id: str, *, per_page: int = 50, max_pages: int = 10
    ) -> list[dict[str, Any]]: ...

    async def download(self, url: str) -> bytes:
        """The file at `url` (Canvas's file URL, redirects followed); the token goes only to Canvas."""
        ...
