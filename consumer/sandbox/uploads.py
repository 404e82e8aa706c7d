"""What an uploaded SIS file holds: its CSVs, what kind each is, how many rows. Pure.

Canvas recognises a CSV by its header row, not its name; the sandbox does the same, roughly, so
`supplied_batches`, `counts` and the file names in `processing_warnings` look like the upload's.
Anything unreadable counts as nothing: the sandbox's outcome comes from the plan, not the data.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass

# (batch name, counts key, header columns that identify it), most specific first.
_KINDS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("xlist", "xlists", frozenset({"xlist_course_id", "section_id"})),
    ("enrollment", "enrollments", frozenset({"user_id", "role"})),
    ("group_membership", "group_memberships", frozenset({"group_id", "user_id"})),
    ("group", "groups", frozenset({"group_id", "name"})),
    ("section", "sections", frozenset({"section_id", "course_id", "name"})),
    ("course", "courses", frozenset({"course_id", "short_name", "long_name"})),
    ("term", "terms", frozenset({"term_id", "name"})),
    ("account", "accounts", frozenset({"account_id", "parent_account_id"})),
    ("user", "users", frozenset({"user_id", "login_id"})),
)
COUNT_KEYS: tuple[str, ...] = (
    "change_sis_ids",
    "accounts",
    "terms",
    "abstract_courses",
    "courses",
    "sections",
    "xlists",
    "users",
    "logins",
    "user_observers",
    "enrollments",
    "admins",
    "group_categories",
    "groups",
    "group_memberships",
    "grade_publishing_results",
)


@dataclass(frozen=True, slots=True)
class CsvFile:
    name: str
    size: int
    kind: str | None
    rows: int
    data: bytes = b""
    """The file's bytes: what its `csv_attachments` entry downloads."""


@dataclass(frozen=True, slots=True)
class UploadSummary:
    files: tuple[CsvFile, ...]

    @property
    def supplied_batches(self) -> list[str]:
        seen: list[str] = []
        for f in self.files:
            if f.kind is not None and f.kind not in seen:
                seen.append(f.kind)
        return seen

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(COUNT_KEYS, 0)
        for f in self.files:
            for kind, key, _ in _KINDS:
                if f.kind == kind:
                    counts[key] += f.rows
        return counts

    def file_names(self) -> list[str]:
        return [f.name for f in self.files] or ["sis_import.csv"]


def _classify(header: list[str]) -> str | None:
    columns = {c.strip().lower() for c in header}
    for kind, _, needed in _KINDS:
        if needed <= columns:
            return kind
    return None


def _read_csv(name: str, data: bytes) -> CsvFile:
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error):
        return CsvFile(name=name, size=len(data), kind=None, rows=0, data=data)
    if not rows:
        return CsvFile(name=name, size=len(data), kind=None, rows=0, data=data)
    body = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    return CsvFile(name=name, size=len(data), kind=_classify(rows[0]), rows=len(body), data=data)


def _ignored(path: str) -> bool:
    """Canvas's `IGNORE_FILES`: macOS resource forks and hidden files in a zip are not imported."""
    return path.lower().startswith("__macosx/") or path.rsplit("/", 1)[-1].startswith(".")


def summarize(file_name: str, data: bytes) -> UploadSummary:
    """The CSVs of a zip (top level and folders, not `__MACOSX/` or dot files) or of a single CSV upload."""
    if data[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                files = tuple(
                    _read_csv(info.filename.rsplit("/", 1)[-1], archive.read(info))
                    for info in archive.infolist()
                    if info.filename.lower().endswith(".csv")
                    and not info.is_dir()
                    and not _ignored(info.filename)
                )
        except (zipfile.BadZipFile, OSError):
            files = ()
        return UploadSummary(files=files)
    return UploadSummary(files=(_read_csv(file_name, data),))
