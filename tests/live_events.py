"""Canvas Live Event bodies as they arrive on the queue (CANVAS.md §1, §3), for tests."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

SHARD = 10**13
LEAKED_TOKEN = "7~LeakedTokenDoNotLog0123456789abcdefghijklmnop"


def canvas_time(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def sis_event(
    *,
    account_uuid: str,
    account_id: int,
    sis_batch_id: int,
    state: str,
    at: datetime,
    request_id: str = "5d1b8c4e-0000-4000-8000-000000000001",
    url_token: str | None = None,
) -> str:
    """One `sis_batch_created`/`sis_batch_updated` message body with the metadata Canvas sends."""
    name = "sis_batch_created" if state == "initializing" else "sis_batch_updated"
    metadata: dict[str, Any] = {
        "root_account_uuid": account_uuid,
        "root_account_id": str(SHARD + account_id),
        "root_account_lti_guid": f"{account_uuid}:canvas-lms",
        "producer": "canvas",
        "event_name": name,
        "event_time": canvas_time(at),
    }
    if state in {"initializing", "created"}:
        query = f"?access_token={url_token}" if url_token else ""
        metadata |= {
            "user_login": "sis-robot@example.edu",
            "user_account_id": str(SHARD + account_id),
            "user_sis_id": "sis-robot",
            "user_id": str(SHARD + 77),
            "time_zone": "America/Chicago",
            "developer_key_id": str(SHARD + 5),
            "context_type": "Account",
            "context_id": str(SHARD + account_id),
            "context_account_id": str(SHARD + account_id),
            "context_role": "AccountAdmin",
            "request_id": request_id,
            "session_id": "a1b2c3",
            "hostname": "canvas.example.edu",
            "http_method": "POST",
            "user_agent": "sis-sync/2.3 (cron)",
            "client_ip": "192.0.2.10",
            "url": f"https://canvas.example.edu/api/v1/accounts/{account_id}/sis_imports{query}",
            "referrer": None,
        }
    else:
        metadata |= {"job_id": str(SHARD + 991), "job_tag": "SisBatch#process"}
    body = {"sis_batch_id": str(sis_batch_id), "account_id": str(account_id), "workflow_state": state}
    return json.dumps({"metadata": metadata, "body": body})


def lifecycle(
    *,
    account_uuid: str,
    account_id: int,
    sis_batch_id: int,
    states: list[str],
    start: datetime,
    step: timedelta = timedelta(seconds=30),
    url_token: str | None = None,
) -> list[str]:
    return [
        sis_event(
            account_uuid=account_uuid,
            account_id=account_id,
            sis_batch_id=sis_batch_id,
            state=state,
            at=start + i * step,
            url_token=url_token,
        )
        for i, state in enumerate(states)
    ]


def other_event(name: str, n: int) -> str:
    """A Live Event we do not care about, with a realistic payload."""
    return json.dumps(
        {
            "metadata": {
                "event_name": name,
                "event_time": "2026-11-24T02:00:00.123Z",
                "root_account_uuid": "other-account",
                "user_id": str(SHARD + n),
                "context_type": "Course",
                "context_id": str(SHARD + 300 + n),
                "url": f"https://canvas.example.edu/courses/{n}",
            },
            "body": {
                "asset_id": str(n),
                "asset_type": "wiki_page",
                "category": "pages",
                "role": "StudentEnrollment",
            },
        }
    )


def sns_wrapped(body: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
            "TopicArn": "arn:aws:sns:us-east-1:123456789012:canvas-live-events",
            "Message": body,
            "Timestamp": "2026-11-24T02:00:00.000Z",
            "SignatureVersion": "1",
        }
    )
