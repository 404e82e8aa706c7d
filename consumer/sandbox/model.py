"""The simulated Canvas's database rows and the pure rules that fill them in.

`SisImport` is mutable on purpose: it is the `sis_batches` row, changed in place by the lifecycle
and read by the API and by tests (`canvas.imports[id]`). Only the lifecycle writes to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from consumer.sandbox.accounts import User
from consumer.sandbox.knobs import Plan
from consumer.sandbox.params import CreateOptions
from consumer.sandbox.sis_errors import SisError
from consumer.sandbox.uploads import UploadSummary

FINISHED = frozenset({"imported", "imported_with_messages", "failed", "failed_with_messages", "aborted"})
RESTORED = frozenset({"restored", "partially_restored"})
NOT_COMPLETED = frozenset({"initializing", "created", "importing", "cleanup_batch"})
"""What `abort` may abort (`SisBatch.not_completed`)."""
NOT_STARTED = frozenset({"initializing", "created"})
"""What `abort_all_pending` aborts (`SisBatch.not_started`)."""
RUNNING = frozenset({"importing", "cleanup_batch"})
"""What `GET sis_imports/importing` lists (`SisBatch.importing`)."""
_STATISTIC_TYPES = (
    "Account",
    "EnrollmentTerm",
    "AbstractCourse",
    "Course",
    "CourseSection",
    "GroupCategory",
    "Group",
    "Pseudonym",
    "CommunicationChannel",
    "Enrollment",
    "GroupMembership",
    "UserObserver",
    "AccountUser",
)


@dataclass(frozen=True, slots=True)
class Attachment:
    id: int
    uuid: str
    display_name: str
    filename: str
    content_type: str
    size: int
    created_at: datetime
    verifier: str
    """What lets its URL download it without a token (Canvas signs file URLs the same way)."""


@dataclass(slots=True, eq=False)
class SisImport:
    id: int
    account_id: int
    user: User
    options: CreateOptions
    params: dict[str, str]
    """Every create parameter as received (query string and form fields)."""
    created_at: datetime
    updated_at: datetime
    origin: str
    """`api` (a POST) or `ui` (`SimulatedCanvas.start_import`: another integration)."""
    request_id: str
    upload_name: str
    upload: bytes
    summary: UploadSummary
    plan: Plan | None
    """None for an orphan: it never runs."""
    workflow_state: str = "initializing"
    progress: int = 0
    started_at: datetime | None = None
    ended_at: datetime | None = None
    data: dict[str, Any] = field(default_factory=dict)
    processing_warnings: list[list[str]] = field(default_factory=list)
    processing_errors: list[list[str]] = field(default_factory=list)
    upload_attachment: Attachment | None = None
    """The batch's own `attachment`: the file as uploaded."""
    csv_attachments: list[Attachment] = field(default_factory=list)
    """The CSVs the import job extracted: empty until it starts, as in Canvas."""
    errors: list[SisError] = field(default_factory=list)
    errors_attachment: Attachment | None = None
    history: list[tuple[str, datetime]] = field(default_factory=list)
    """Every state change, silent ones included, for tests to inspect."""

    @property
    def finished(self) -> bool:
        return self.workflow_state in FINISHED

    @property
    def states(self) -> list[str]:
        return [state for state, _ in self.history]


def statistics(summary: UploadSummary, deleted: dict[str, int]) -> dict[str, Any]:
    counts = summary.counts()
    created = {
        "Account": counts["accounts"],
        "EnrollmentTerm": counts["terms"],
        "Course": counts["courses"],
        "CourseSection": counts["sections"],
        "Pseudonym": counts["users"],
        "CommunicationChannel": counts["users"],
        "Enrollment": counts["enrollments"],
        "Group": counts["groups"],
        "GroupMembership": counts["group_memberships"],
    }
    stats: dict[str, Any] = {"total_state_changes": sum(created.values()) + sum(deleted.values())}
    for name in _STATISTIC_TYPES:
        stats[name] = {"created": created.get(name, 0), "restored": 0, "deleted": deleted.get(name, 0)}
    return stats


def finish_data(imp: SisImport, *, cleaned_up: bool, warnings: int, errors: int) -> dict[str, Any]:
    """`data` of a finished import: counts (with `batch_*_deleted` after a cleanup) and statistics."""
    counts: dict[str, Any] = imp.summary.counts()
    extracted = {"downloadable_attachment_ids": [a.id for a in imp.csv_attachments]}
    deleted: dict[str, int] = {}
    if cleaned_up:
        deleted = {"Course": 2, "CourseSection": 1, "Enrollment": 7}
        counts |= {"batch_courses_deleted": 2, "batch_sections_deleted": 1}
        counts["batch_enrollments_deleted"] = 7
    counts |= {"error_count": errors, "warning_count": warnings}
    return {
        "import_type": imp.options.import_type,
        "supplied_batches": imp.summary.supplied_batches,
        "counts": counts,
        "statistics": statistics(imp.summary, deleted),
        **(extracted if imp.csv_attachments else {}),
    }


@dataclass(slots=True, eq=False)
class Progress:
    """Canvas's `Progress` row: what `restore_states` answers with, and `GET /progress/:id` shows."""

    id: int
    context_id: int
    """The SIS batch."""
    tag: str
    created_at: datetime
    updated_at: datetime
    workflow_state: str = "queued"
    completion: float = 0.0
