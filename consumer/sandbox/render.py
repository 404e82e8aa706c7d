"""The JSON the simulated Canvas answers with. Pure.

Shapes follow `SisBatch#as_json` and `Api::V1::SisImport` (`errors_attachment`, `user` and
`csv_attachments` appear only when there is something to show). Times are UTC ISO 8601 without
fractions, as Canvas's API renders them; event times are another format (see `live_events`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from consumer.sandbox.accounts import Account, Term, User
from consumer.sandbox.model import Attachment, Progress, SisImport

STRING_IDS_MEDIA_TYPE = "application/json+canvas-string-ids"


def iso(at: datetime | None) -> str | None:
    if at is None:
        return None
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def user_json(user: User, created_at: datetime) -> dict[str, Any]:
    last, _, first = user.name.rpartition(" ")
    return {
        "id": user.id,
        "name": user.name,
        "created_at": iso(created_at),
        "sortable_name": f"{first}, {last}" if last else user.name,
        "short_name": user.name,
        "sis_user_id": user.sis_user_id,
        "integration_id": None,
        "login_id": user.login_id,
    }


def file_url(att: Attachment, base_url: str) -> str:
    """Canvas signs a file's URL with a verifier, so it downloads without a token."""
    return f"{base_url}/files/{att.id}/download?download_frd=1&verifier={att.verifier}"


def attachment_json(att: Attachment, base_url: str) -> dict[str, Any]:
    return {
        "id": att.id,
        "uuid": att.uuid,
        "folder_id": None,
        "display_name": att.display_name,
        "filename": att.filename,
        "upload_status": "success",
        "content-type": att.content_type,
        "url": file_url(att, base_url),
        "size": att.size,
        "created_at": iso(att.created_at),
        "updated_at": iso(att.created_at),
        "unlock_at": None,
        "locked": False,
        "hidden": False,
        "lock_at": None,
        "hidden_for_user": False,
        "thumbnail_url": None,
        "modified_at": iso(att.created_at),
        "mime_class": "file",
        "media_entry_id": None,
        "locked_for_user": False,
    }


def sis_import_json(imp: SisImport, base_url: str) -> dict[str, Any]:
    opts = imp.options
    json: dict[str, Any] = {
        "id": imp.id,
        "created_at": iso(imp.created_at),
        "started_at": iso(imp.started_at),
        "ended_at": iso(imp.ended_at),
        "updated_at": iso(imp.updated_at),
        "progress": imp.progress,
        "workflow_state": imp.workflow_state,
        "data": imp.data,
        "batch_mode": opts.batch_mode,
        "batch_mode_term_id": opts.batch_mode_term_id,
        "multi_term_batch_mode": opts.multi_term_batch_mode,
        "override_sis_stickiness": opts.override_sis_stickiness,
        "add_sis_stickiness": opts.add_sis_stickiness,
        "clear_sis_stickiness": opts.clear_sis_stickiness,
        "update_sis_id_if_login_claimed": opts.update_sis_id_if_login_claimed,
        "diffing_data_set_identifier": opts.diffing_data_set_identifier,
        "diffing_remaster": opts.diffing_remaster,
        "diffed_against_import_id": None,
        "diffing_drop_status": opts.diffing_drop_status,
        "diffing_user_remove_status": opts.diffing_user_remove_status,
        "batch_mode_enrollment_drop_status": opts.batch_mode_enrollment_drop_status,
        "skip_deletes": opts.skip_deletes,
        "change_threshold": opts.change_threshold,
        "diff_row_count_threshold": opts.diff_row_count_threshold,
        "diffing_threshold_exceeded": False,
    }
    if imp.processing_errors:
        json["processing_errors"] = imp.processing_errors
    if imp.processing_warnings:
        json["processing_warnings"] = imp.processing_warnings
    if imp.errors_attachment is not None:
        json["errors_attachment"] = attachment_json(imp.errors_attachment, base_url)
    json["user"] = user_json(imp.user, imp.created_at)
    if imp.csv_attachments:
        json["csv_attachments"] = [attachment_json(a, base_url) for a in imp.csv_attachments]
    return json


def account_json(account: Account) -> dict[str, Any]:
    return {
        "id": account.id,
        "name": account.name,
        "uuid": account.uuid,
        "parent_account_id": account.parent_account_id,
        "root_account_id": account.root_account_id,
        "workflow_state": "active",
        "default_time_zone": account.time_zone,
        "sis_account_id": account.sis_account_id,
        "integration_id": None,
        "sis_import_id": None,
        "lti_guid": account.lti_guid,
        "default_storage_quota_mb": 500,
        "default_user_storage_quota_mb": 50,
        "default_group_storage_quota_mb": 50,
    }


def term_json(term: Term) -> dict[str, Any]:
    """An EnrollmentTerm of the Enrollment Terms API (the fields a SIS script looks at)."""
    return {
        "id": term.id,
        "name": term.name,
        "sis_term_id": term.sis_term_id,
        "sis_import_id": None,
        "start_at": None,
        "end_at": None,
        "workflow_state": "active",
        "grading_period_group_id": None,
    }


def progress_json(progress: Progress, base_url: str) -> dict[str, Any]:
    return {
        "id": progress.id,
        "context_id": progress.context_id,
        "context_type": "SisBatch",
        "user_id": None,
        "tag": progress.tag,
        "completion": progress.completion,
        "workflow_state": progress.workflow_state,
        "created_at": iso(progress.created_at),
        "updated_at": iso(progress.updated_at),
        "message": None,
        "url": f"{base_url}/api/v1/progress/{progress.id}",
    }


def _id_key(key: str) -> bool:
    return key == "id" or key.endswith("_id")


def stringify_ids(value: Any) -> Any:
    """What `Accept: application/json+canvas-string-ids` does: integer ids become strings."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            if _id_key(key) and isinstance(item, int) and not isinstance(item, bool):
                out[key] = str(item)
            elif key.endswith("_ids") and isinstance(item, list):
                out[key] = [str(i) if isinstance(i, int) else stringify_ids(i) for i in item]
            else:
                out[key] = stringify_ids(item)
        return out
    if isinstance(value, list):
        return [stringify_ids(item) for item in value]
    return value


def wants_string_ids(accept: str | None) -> bool:
    return accept is not None and STRING_IDS_MEDIA_TYPE in accept.lower()
