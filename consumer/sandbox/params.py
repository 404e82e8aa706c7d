"""The create parameters of the SIS Imports API, validated in Canvas's order. Pure.

Canvas checks some parameters before it saves the batch and some after (inside the block passed to
`SisBatch.create_with_attachment`, `app/controllers/sis_imports_api_controller.rb`). A failure of
the second kind answers 400 but leaves the saved batch in `initializing` with its
`sis_batch_created` event already sent: the orphan of docs/canvas.md ("Why imports get stuck").
`parse_create` keeps the two kinds apart as `early_error` and `late_error`, and reproduces Canvas's
quirks on purpose (`multi_term_batch_mode=false` still demands a `change_threshold`: Ruby's
"false" is truthy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from consumer.sandbox.accounts import Term

CREATE_PARAMS: tuple[str, ...] = (
    "import_type",
    "extension",
    "batch_mode",
    "batch_mode_term_id",
    "multi_term_batch_mode",
    "batch_mode_enrollment_drop_status",
    "skip_deletes",
    "override_sis_stickiness",
    "add_sis_stickiness",
    "clear_sis_stickiness",
    "update_sis_id_if_login_claimed",
    "diffing_data_set_identifier",
    "diffing_remaster_data_set",
    "diffing_drop_status",
    "diffing_user_remove_status",
    "change_threshold",
    "diff_row_count_threshold",
)
IMPORT_TYPES = frozenset({"instructure_csv"})
ENROLLMENT_DROP_STATUSES = ("deleted", "completed", "inactive")
USER_REMOVE_STATUSES = ("deleted", "suspended")
_TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})
_EXTENSIONS = {"application/zip": "zip", "text/xml": "xml", "text/plain": "csv", "text/csv": "csv"}


@dataclass(frozen=True, slots=True)
class ApiError:
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CreateOptions:
    """What the batch records; rendered back in the SisImport JSON."""

    import_type: str = "instructure_csv"
    batch_mode: bool = False
    batch_mode_term_id: int | None = None
    multi_term_batch_mode: bool | None = None
    change_threshold: int | None = None
    diff_row_count_threshold: int | None = None
    diffing_data_set_identifier: str | None = None
    diffing_remaster: bool | None = None
    skip_deletes: bool = False
    update_sis_id_if_login_claimed: bool = False
    override_sis_stickiness: bool | None = None
    add_sis_stickiness: bool | None = None
    clear_sis_stickiness: bool | None = None
    diffing_drop_status: str | None = None
    diffing_user_remove_status: str | None = None
    batch_mode_enrollment_drop_status: str | None = None


@dataclass(frozen=True, slots=True)
class ParsedCreate:
    options: CreateOptions
    early_error: ApiError | None = None
    """Refused before the batch is saved: no batch, no event."""
    late_error: ApiError | None = None
    """Refused after the batch is saved: an orphaned `initializing`."""


def to_bool(value: str | None) -> bool:
    """Canvas's `value_to_boolean`."""
    return value is not None and value.strip().lower() in _TRUE


def _int(value: str | None) -> int | None:
    if value is None or not value.strip().lstrip("-").isdigit():
        return None
    return int(value)


def _pick(value: str | None, allowed: tuple[str, ...]) -> str | None:
    return value if value in allowed else None


def _message(text: str) -> ApiError:
    return ApiError(400, {"message": text})


def parse_create(params: Mapping[str, str], find_term: Callable[[str], Term | None]) -> ParsedCreate:
    """`find_term`: the root account's `api_find` over its active terms (ids and `sis_term_id:`)."""
    import_type = params.get("import_type") or "instructure_csv"
    if import_type not in IMPORT_TYPES:
        # Canvas raises here, so the client sees a generic 500.
        error = ApiError(500, {"errors": [{"message": "An error occurred."}], "error_report_id": 1})
        return ParsedCreate(CreateOptions(import_type=import_type), early_error=error)

    term_id: int | None = None
    if to_bool(params.get("batch_mode")):
        wanted = (params.get("batch_mode_term_id") or "").strip()
        term = find_term(wanted) if wanted else None
        term_id = term.id if term is not None else None
        if term_id is None and "multi_term_batch_mode" not in params:
            error = _message("Batch mode specified, but the given batch_mode_term_id cannot be found.")
            return ParsedCreate(CreateOptions(), early_error=error)

    change_threshold = _int(params.get("change_threshold"))
    override = to_bool(params.get("override_sis_stickiness"))
    fields: dict[str, Any] = {
        "import_type": import_type,
        "change_threshold": change_threshold,
        "skip_deletes": to_bool(params.get("skip_deletes")),
        "update_sis_id_if_login_claimed": to_bool(params.get("update_sis_id_if_login_claimed")),
        "override_sis_stickiness": True if override else None,
        "add_sis_stickiness": True if override and to_bool(params.get("add_sis_stickiness")) else None,
        "clear_sis_stickiness": (True if override and to_bool(params.get("clear_sis_stickiness")) else None),
    }
    row_threshold = _int(params.get("diff_row_count_threshold"))
    if row_threshold is not None and row_threshold > 0:
        fields["diff_row_count_threshold"] = row_threshold

    late_error: ApiError | None = None
    if term_id is not None:
        fields |= {"batch_mode": True, "batch_mode_term_id": term_id}
    elif "multi_term_batch_mode" in params:  # presence, as in Ruby
        fields |= {"batch_mode": True, "multi_term_batch_mode": to_bool(params["multi_term_batch_mode"])}
        if change_threshold is None:
            late_error = _message("change_threshold is required to use multi term_batch mode.")
    elif params.get("diffing_data_set_identifier"):
        fields["diffing_data_set_identifier"] = params["diffing_data_set_identifier"]
        if to_bool(params.get("diffing_remaster_data_set")):
            fields["diffing_remaster"] = True

    for name, allowed in (
        ("diffing_drop_status", ENROLLMENT_DROP_STATUSES),
        ("diffing_user_remove_status", USER_REMOVE_STATUSES),
        ("batch_mode_enrollment_drop_status", ENROLLMENT_DROP_STATUSES),
    ):
        if params.get(name):
            fields[name] = _pick(params[name], allowed)
            if fields[name] is None and late_error is None:
                late_error = _message(f"Invalid {name}")
    return ParsedCreate(CreateOptions(**fields), late_error=late_error)


def raw_upload_name(extension: str | None, content_type: str | None) -> str | ApiError:
    """The attachment name of a raw-body POST: `sis_import.<extension>`, as Canvas names it."""
    if extension:
        return f"sis_import.{extension}"
    media_type, _, rest = (content_type or "").partition(";")
    charset = ""
    for part in rest.split(";"):
        key, _, value = part.strip().partition("=")
        if key.lower() == "charset":
            charset = value.strip().strip('"')
    if charset and charset.lower() != "utf-8":
        return ApiError(400, {"error": "Invalid content type, UTF-8 required"})
    return f"sis_import.{_EXTENSIONS.get(media_type.strip().lower(), 'zip')}"


def parse_canvas_time(raw: str | None, zone: tzinfo) -> datetime | None:
    """`created_since` / `created_before`: Canvas's `CanvasTime.try_parse` (`Time.zone.parse`).

    A date alone is midnight, a time without an offset is local to the request's time zone (the
    user's, else the account's), and what cannot be parsed is ignored rather than refused. Ruby's
    parser takes more than ISO 8601; the sandbox takes ISO 8601 with or without time and offset.
    """
    text = (raw or "").strip()
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text)  # a date alone is its midnight
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=zone)
