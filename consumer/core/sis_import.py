"""The SIS Imports API's answer (a SisImport object) as tracker input, and what we keep of results."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from consumer.core.events import parse_event_time
from consumer.core.tracker import ALL_STATES, FINISHED, RUNNING, WAITING, Observation, State

_LAST_MICROSECOND = timedelta(microseconds=999_999)


def _time(value: Any) -> datetime | None:
    """Canvas's API writes whole seconds: the true time lies in [t, t + 1 s). Taking the end of
    that second lets an event's precise time for the same state win the tracker's earliest-time
    merge in any arrival order, instead of the truncated one pulling the stage up to 1 s early."""
    if not isinstance(value, str):
        return None
    parsed = parse_event_time(value)
    if parsed is not None and parsed.microsecond == 0 and "." not in value:
        return parsed + _LAST_MICROSECOND
    return parsed


def state_time(sis_import: Mapping[str, Any], state: State) -> datetime | None:
    """Canvas's own timestamp for the state the API reports: when that state began, if it says."""
    created, started = _time(sis_import.get("created_at")), _time(sis_import.get("started_at"))
    ended, updated = _time(sis_import.get("ended_at")), _time(sis_import.get("updated_at"))
    if state in WAITING:
        return created or updated
    if state in RUNNING:
        return started or updated or created
    if state in FINISHED:
        return ended or updated
    return updated


def api_observation(
    sis_import: Mapping[str, Any], *, account: str, account_id: str, now: datetime
) -> Observation | None:
    """The SisImport as an observation (source `api`); None when it has no usable id or state."""
    state = sis_import.get("workflow_state")
    raw_id = sis_import.get("id")
    if state not in ALL_STATES or not str(raw_id).isdigit():
        return None
    workflow_state = State(state)
    return Observation(
        account=account,
        sis_batch_id=int(str(raw_id)),
        state=workflow_state,
        at=state_time(sis_import, workflow_state) or now,
        source="api",
        account_id=account_id,
    )


def result_summary(sis_import: Mapping[str, Any], first: int = 5) -> dict[str, Any]:
    """What an operator wants from a finished import: counts, the first warnings and errors."""
    data = _mapping(sis_import.get("data"))
    counts = _mapping(data.get("counts"))
    warnings = sis_import.get("processing_warnings") or []
    errors = sis_import.get("processing_errors") or []
    return {
        "id": sis_import.get("id"),
        "workflow_state": sis_import.get("workflow_state"),
        "progress": sis_import.get("progress"),
        "warning_count": int(counts.get("warning_count", len(warnings)) or 0),
        "error_count": int(counts.get("error_count", len(errors)) or 0),
        "counts": dict(counts),
        "deleted": {
            k: v for k, v in counts.items() if str(k).startswith("batch_") and str(k).endswith("_deleted")
        },
        "first_warnings": [list(w) for w in warnings[:first]],
        "first_errors": [list(e) for e in errors[:first]],
        "errors_attachment": bool(sis_import.get("errors_attachment")),
    }


def _mapping(value: Any) -> dict[str, Any]:
    return {str(k): v for k, v in value.items()} if isinstance(value, Mapping) else {}
