"""Canvas Live Events for SIS batches, in the "Canvas" format (docs/canvas.md, "Live Events
of SIS imports"). Pure.

Events raised while serving a request carry the request's metadata; events raised by a background
job carry only the job's. Metadata values are strings (or null) and its ids are global; the body's
ids are local ids as strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consumer.sandbox.accounts import Account, User

PRODUCER = "canvas"
JOB_TAG = "SisBatch.process_all_for_account"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """The request an event was raised in (Canvas's `LiveEvents.set_context`)."""

    request_id: str
    url: str
    """The full URL, query string included: a token sent as `?access_token=` leaks into events."""
    http_method: str
    hostname: str
    user_agent: str | None
    client_ip: str | None
    referrer: str | None
    session_id: str | None
    context: Account
    """The account in the URL; for SIS imports always the root account."""
    user: User


@dataclass(frozen=True, slots=True)
class JobContext:
    job_id: int
    job_tag: str = JOB_TAG


def event_time(at: datetime) -> str:
    """UTC with milliseconds and `Z`: `2020-01-14T14:14:11.498Z`."""
    at = at.astimezone(UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{at.microsecond // 1000:03d}Z"


def event_name(state: str) -> str:
    return "sis_batch_created" if state == "initializing" else "sis_batch_updated"


def _root_metadata(root: Account) -> dict[str, str | None]:
    return {
        "root_account_uuid": root.uuid,
        "root_account_id": str(root.global_id()),
        "root_account_lti_guid": root.lti_guid,
    }


def request_metadata(root: Account, ctx: RequestContext, name: str, at: datetime) -> dict[str, Any]:
    user, context = ctx.user, ctx.context
    return {
        **_root_metadata(root),
        "user_login": user.login_id,
        "user_account_id": str(root.global_id()),
        "user_sis_id": user.sis_user_id,
        "user_id": str(root.global_id(user.id)),
        "time_zone": root.time_zone,
        "developer_key_id": str(root.developer_key_id),
        "real_user_id": None,
        "context_type": "Account",
        "context_id": str(context.global_id()),
        "context_sis_source_id": context.sis_account_id,
        "context_account_id": str(context.global_id()),
        "context_role": "AccountAdmin",
        "request_id": ctx.request_id,
        "session_id": ctx.session_id,
        "hostname": ctx.hostname,
        "http_method": ctx.http_method,
        "user_agent": ctx.user_agent,
        "client_ip": ctx.client_ip,
        "url": ctx.url,
        "referrer": ctx.referrer,
        "producer": PRODUCER,
        "event_name": name,
        "event_time": event_time(at),
    }


def job_metadata(root: Account, job: JobContext, name: str, at: datetime) -> dict[str, Any]:
    return {
        "job_id": str(job.job_id),
        "job_tag": job.job_tag,
        "producer": PRODUCER,
        **_root_metadata(root),
        "event_name": name,
        "event_time": event_time(at),
    }


def sis_batch_event(
    root: Account,
    sis_batch_id: int,
    state: str,
    at: datetime,
    origin: RequestContext | JobContext,
) -> dict[str, Any]:
    name = event_name(state)
    if isinstance(origin, RequestContext):
        metadata = request_metadata(root, origin, name, at)
    else:
        metadata = job_metadata(root, origin, name, at)
    body = {"sis_batch_id": str(sis_batch_id), "account_id": str(root.id), "workflow_state": state}
    return {"metadata": metadata, "body": body}


def encode(event: dict[str, Any]) -> str:
    """The SQS message body: the event JSON itself, no envelope."""
    return json.dumps(event, separators=(",", ":"))
