"""Canvas Live Event bodies as they arrive on the queue (docs/canvas.md, "Live Events"), for tests.

Built by the simulated Canvas's own builder (`consumer.sandbox.live_events`), so a test's event and
the sandbox's differ only in the ids and times a test picks.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from consumer.sandbox.accounts import Account, User
from consumer.sandbox.live_events import JobContext, RequestContext, encode, sis_batch_event

SHARD = 10**13
"""Shard 1: a global id is `SHARD + local id`."""
LEAKED_TOKEN = "7~LeakedTokenDoNotLog0123456789abcdefghijklmnop"
AT = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)
ROBOT = User(77, "SIS Robot", "sis-robot@example.edu", "sis-robot")


def sis_event(
    *,
    sis_batch_id: int,
    state: str = "initializing",
    account_uuid: str = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC",
    account_id: int = 1,
    at: datetime = AT,
    request_id: str = "5d1b8c4e-0000-4000-8000-000000000001",
    url_token: str | None = None,
    user_agent: str = "sis-sync/2.3 (cron)",
) -> str:
    """One `sis_batch_created`/`sis_batch_updated` message body with the metadata Canvas sends: a
    request's for the states the API request itself produces, a background job's after that."""
    account = Account(
        id=account_id, name="Example University", uuid=account_uuid, shard=1, admin=ROBOT, developer_key_id=5
    )
    origin: RequestContext | JobContext
    if state in {"initializing", "created"}:
        query = f"?access_token={url_token}" if url_token else ""
        origin = RequestContext(
            request_id=request_id,
            url=f"https://canvas.example.edu/api/v1/accounts/{account_id}/sis_imports{query}",
            http_method="POST",
            hostname="canvas.example.edu",
            user_agent=user_agent,
            client_ip="192.0.2.10",
            referrer=None,
            session_id="a1b2c3",
            context=account,
            user=ROBOT,
        )
    else:
        origin = JobContext(SHARD + 991)
    return encode(sis_batch_event(account, sis_batch_id, state, at, origin))


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


def many_imports(n: int, start: datetime = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)) -> list[str]:
    """`n` whole imports of one account, each with a redelivered last event and an unrelated event."""
    bodies: list[str] = []
    for batch in range(1, n + 1):
        events = lifecycle(
            account_uuid="acct-uuid-a",
            account_id=1,
            sis_batch_id=batch,
            states=["initializing", "created", "importing", "imported"],
            start=start,
        )
        bodies += [*events, events[-1], other_event("logged_in", batch)]
    return bodies
