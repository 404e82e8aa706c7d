"""What we know about an import we submitted: recorded before the POST, completed after it; the
options it was submitted with; and, for a file from the S3 drop folder, the object it came from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ImportOptions:
    """Every create parameter of the SIS Imports API, named as Canvas names them."""

    import_type: str | None = None
    extension: str | None = None
    batch_mode: bool = False
    batch_mode_term_id: str | None = None
    multi_term_batch_mode: bool = False
    batch_mode_enrollment_drop_status: str | None = None
    skip_deletes: bool = False
    override_sis_stickiness: bool = False
    add_sis_stickiness: bool = False
    clear_sis_stickiness: bool = False
    update_sis_id_if_login_claimed: bool = False
    diffing_data_set_identifier: str | None = None
    diffing_remaster_data_set: bool = False
    diffing_drop_status: str | None = None
    diffing_user_remove_status: str | None = None
    change_threshold: int | None = None
    diff_row_count_threshold: int | None = None

    def params(self) -> dict[str, str]:
        """The form parameters to send: only what was set."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if value is True:
                out[f.name] = "true"
            elif value is not None and value is not False:  # 0 is a value: `0 in (None, False)` is True
                out[f.name] = str(value)
        return out


@dataclass(frozen=True, slots=True)
class SourceObject:
    """The S3 object version a drop-folder submission was read from."""

    bucket: str
    key: str
    etag: str
    version_id: str | None = None
    sequencer: str | None = None
    """The notification's `sequencer`: tells two uploads of one key apart in a bucket without
    versioning (the same upload notified twice carries the same one)."""

    @property
    def version(self) -> str:
        """What makes this upload of `key` one, whoever is told about it and how often."""
        if self.version_id:
            return self.version_id
        return f"etag:{self.etag}" + (f":{self.sequencer}" if self.sequencer else "")


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
    source: SourceObject | None = None
    """The drop-folder object it was read from; None for `sis-consumer submit`."""
    reported: str | None = None
    """For a drop-folder object: the status written back onto it (its tags) once the outcome was
    known; `retried` when the POST never reached Canvas and the object was left to come again."""

    @property
    def joinable(self) -> bool:
        """Events can be joined to it: Canvas answered (a 400 may still have left a batch)."""
        return self.status in {SubmissionStatus.ACCEPTED, SubmissionStatus.REJECTED}
