"""Observations and submissions for store and tracker tests: one import's facts, by the minute."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from consumer.core.submission import SourceObject, Submission
from consumer.core.tracker import Observation, Source, State

ACCOUNT = "a7zVUI7vnXgmCxLYSvqK9vVsP9Q3Z8tHaOz6xKcC"
OTHER_ACCOUNT = "b8aWVJ8woYhnDyMZTwrL0wWtQ4R4A9uIbPa7yLdD"
T0 = datetime(2024, 3, 1, 2, 0, 0, tzinfo=UTC)
"""When Canvas created the imports of these tests."""
NOW = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)
"""Our clock when they are recorded."""
REQUEST_ID = "1dd9dc6f-2fb0-4c25-b5b8-1a6a5b8d6f0e"
KEEP_JOURNAL = 100 * 365 * 86400.0
"""A journal retention that keeps these tests' entries (recorded in 2024) from being pruned."""


def obs(
    state: State,
    minutes: float,
    *,
    batch: int = 101,
    account: str = ACCOUNT,
    source: Source = "event",
    request_id: str | None = REQUEST_ID,
    user_agent: str | None = None,
) -> Observation:
    """`state` of import `batch`, seen at T0 + `minutes`."""
    return Observation(
        account=account,
        sis_batch_id=batch,
        state=state,
        at=T0 + timedelta(minutes=minutes),
        source=source,
        account_id="1",
        request_id=request_id,
        developer_key_id="170000000000056",
        user_agent=user_agent,
    )


def submission(minutes: float = -1, *, account: str = ACCOUNT, file_name: str = "nightly.zip") -> Submission:
    """What `submit` writes down before its POST, at T0 + `minutes`."""
    return Submission(
        canvas_url="https://canvas.example.edu",
        account_ref="self",
        account=account,
        account_id="1",
        file_name=file_name,
        size=1234,
        sha256="0" * 64,
        options={"extension": "zip", "batch_mode": "true"},
        submitted_at=T0 + timedelta(minutes=minutes),
    )


def dropped(
    key: str = "nightly/users.zip",
    *,
    version_id: str | None = "v1",
    etag: str = "9e107d9d372bb6826bd81d3542a419d6",
) -> SourceObject:
    """An object of the drop folder, as its notification and GetObject describe it."""
    return SourceObject(
        bucket="sis-drop", key=key, etag=etag, version_id=version_id, sequencer="0062E9F6A1B2C3D4E5"
    )
