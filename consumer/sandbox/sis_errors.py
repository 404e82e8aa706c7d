"""The errors and warnings of a SIS import, as Canvas keeps them (`sis_batch_errors`). Pure.

Canvas stores one row per problem (file, message, row, `failure` for errors vs warnings), shows the
first 24 of each kind in `processing_errors` / `processing_warnings` with an "and N more" row, lists
them all through the SIS Import Errors API (newest first), and writes them all to the CSV of
`errors_attachment` (`SisBatch#write_errors_to_file`). docs/canvas.md, "Errors of an import".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from consumer.sandbox.uploads import UploadSummary

MAX_LISTED_MESSAGES = 24
ERRORS_FILE_HEADER = ("sis_import_id", "file", "message", "row")


@dataclass(frozen=True, slots=True)
class SisError:
    id: int
    sis_import_id: int
    file: str | None
    message: str
    row: int | None
    """1-based, the header row being 1."""
    row_info: str | None
    failure: bool
    """True for an error that fails the import; False for a warning."""
    created_at: datetime


def planned_errors(
    sis_import_id: int, summary: UploadSummary, count: int, *, failure: bool, ids: Iterator[int], at: datetime
) -> list[SisError]:
    """`count` warnings (login already claimed) or errors (unknown course status), spread over the files."""
    names = summary.file_names()
    made = []
    for n in range(count):
        if failure:
            message = f"Unknown course status 'inactive' for course C-{n}"
        else:
            claimed = f"sis-user-{n + 1}'s requested login information"
            message = f"user sis-user-{n} has already claimed {claimed}, skipping"
        made.append(
            SisError(
                id=next(ids),
                sis_import_id=sis_import_id,
                file=names[n % len(names)],
                message=message,
                row=n // len(names) + 2,
                row_info=None,
                failure=failure,
                created_at=at,
            )
        )
    return made


def listed(errors: list[SisError], *, failure: bool) -> list[list[str]]:
    """`processing_errors` (failure) or `processing_warnings`: 24 rows at most, then 'and N more'."""
    kind = "errors" if failure else "warnings"
    rows = [[e.file or "", e.message] for e in errors if e.failure == failure]
    if len(rows) <= MAX_LISTED_MESSAGES:
        return rows
    more = len(rows) - MAX_LISTED_MESSAGES
    return [
        *rows[:MAX_LISTED_MESSAGES],
        [f"and {more} more {kind} that were not included", f"Download the error file to see all {kind}."],
    ]


def errors_file(errors: list[SisError]) -> bytes:
    """The CSV of `errors_attachment`: every error and warning, header first."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ERRORS_FILE_HEADER)
    for e in errors:
        writer.writerow([e.sis_import_id, e.file or "", e.message, "" if e.row is None else e.row])
    return out.getvalue().encode()


def newest_first(errors: list[SisError]) -> list[SisError]:
    """The SIS Import Errors API's order (`created_at DESC`; later rows first among equals)."""
    return sorted(errors, key=lambda e: (e.created_at, e.id), reverse=True)


def error_json(e: SisError) -> dict[str, Any]:
    return {
        "sis_import_id": e.sis_import_id,
        "file": e.file,
        "message": e.message,
        "row_info": e.row_info,
        "row": e.row,
    }
