"""What we know about an import we submitted: recorded before the POST, completed after it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


class SubmissionStatus(StrEnum):
    PENDING = "pending"
    """Recorded; the POST has not answered (or we died before recording the answer)."""
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    """Canvas answered 4xx; `error` holds its message."""
    FAILED = "failed"
    """No usable answer: network error, 5xx, throttled after every retry."""


@dataclass(frozen=True, slots=True)
class Submission:
    canvas_url: str
    account_ref: str
    """The account as given on the command line (`self`, or a local id)."""
    file_name: str
    size: int
    sha256: str
    submitted_at: datetime
    options: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    account: str | None = None
    """The root account's UUID, learned from the accounts API."""
    account_id: str | None = None
    status: SubmissionStatus = SubmissionStatus.PENDING
    id: int | None = None
    http_status: int | None = None
    error: str | None = None
    sis_batch_id: int | None = None
    request_id: str | None = None
    answered_at: datetime | None = None

    @property
    def joinable(self) -> bool:
        """Events can be joined to it: Canvas answered (a 400 may still have left a batch)."""
        return self.status in {SubmissionStatus.ACCEPTED, SubmissionStatus.REJECTED}
