"""`sis-consumer check-config --probe`: reach what the daemon will use, for real, one line each.

The queues (`GetQueueAttributes`: standard or not, depth, redrive, whether Canvas may send), the
store (opened and pinged; when the latest Live Event was recorded), and Canvas (`GET
accounts/self`: which root account and its UUID, and whether the token may use the SIS Imports
API). A check reports what went wrong; it never raises.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from consumer.adapters.canvas import open_canvas
from consumer.adapters.sqs import open_queue
from consumer.commands.access import token_access
from consumer.config import NO_TOKEN_NOTE, PREFIX, Settings
from consumer.core.links import canvas_origin
from consumer.errors import ConsumerError
from consumer.stores import open_store

INSTRUCTURE_AWS_ACCOUNT = "636161780776"
"""The AWS account Canvas Live Events are sent from: the queue policy must let it send."""


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "FAIL"


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    status: Status
    detail: str

    def line(self) -> str:
        return f"{self.status.value:<5} {self.name:<13} {self.detail}"


async def probe(settings: Settings) -> list[Check]:
    checks = []
    for name, url in (
        ("queue", settings.queue_url),
        ("dlq", settings.dlq_url),
        ("intake queue", settings.intake_queue_url),
    ):
        if url is not None:
            checks.append(await _queue(name, url, settings))
        elif name == "queue":
            checks.append(
                Check(name, Status.FAIL, f"{PREFIX}QUEUE_URL is not set: `run` will refuse to start")
            )
    checks.append(await _store(settings))
    checks.append(await _canvas(settings))
    return checks


async def _queue(name: str, url: str, settings: Settings) -> Check:
    try:
        async with open_queue(url, None, region=settings.region, pool_size=1, hook=lambda _o, _r: None) as q:
            found = await q.attributes()
    except ConsumerError as exc:
        return Check(name, Status.FAIL, f"{url}: {exc}")
    kind = "FIFO" if found.get("FifoQueue") == "true" else "standard"
    detail = (
        f"{url.rpartition('/')[2]}: {kind}, {found.get('ApproximateNumberOfMessages', '?')} waiting, "
        f"{found.get('ApproximateNumberOfMessagesNotVisible', '?')} in flight"
    )
    redrive = found.get("RedrivePolicy")
    if redrive:
        detail += f", to a DLQ after {json.loads(redrive).get('maxReceiveCount', '?')} receives"
    if kind == "FIFO":
        return Check(name, Status.FAIL, detail + ": must be a standard queue")
    if name == "queue" and INSTRUCTURE_AWS_ACCOUNT not in found.get("Policy", ""):
        why = f"its policy does not let Canvas's AWS account {INSTRUCTURE_AWS_ACCOUNT} send to it"
        return Check(name, Status.WARN, f"{detail}; {why}")
    return Check(name, Status.OK, detail)


async def _store(settings: Settings) -> Check:
    path = settings.sqlite_path
    if path is not None and not path.exists():
        directory = next((p for p in (path.parent, *path.parent.parents) if p.exists()), path.parent)
        if not os.access(directory, os.W_OK):
            return Check("store", Status.FAIL, f"{path.absolute()}: {directory} is not writable")
        return Check("store", Status.OK, f"{path.absolute()}: not created yet (the daemon creates it)")
    try:
        async with open_store(settings, existing=True) as store:
            await store.ping()
            last = await store.last_event_received()
            unfinished, stuck = await store.unfinished(), await store.stuck()
    except ConsumerError as exc:
        return Check("store", Status.FAIL, f"{settings.store_url}: {exc}")
    seen = "no Live Event recorded yet" if last is None else f"last Live Event recorded {_ago(last)}"
    return Check(
        "store", Status.OK, f"{settings.store_url}: {seen}; {len(unfinished)} unfinished, {len(stuck)} stuck"
    )


async def _canvas(settings: Settings) -> Check:
    origin = canvas_origin(settings.canvas_url)
    if origin is None:
        return Check("canvas", Status.WARN, f"{PREFIX}CANVAS_URL is not set: no submit, no reconciliation")
    if settings.canvas_token is None:
        return Check("canvas", Status.WARN, f"{origin}: {PREFIX}CANVAS_TOKEN {NO_TOKEN_NOTE}")
    try:
        async with open_canvas(origin, settings.canvas_token, attempts=2, backoff_base=0.5) as canvas:
            access = await token_access(canvas)
    except ConsumerError as exc:
        return Check("canvas", Status.FAIL, f"{origin}: {exc}")
    detail = f"{origin}: account {access.account_id} {access.name}, uuid {access.uuid}"
    if not access.may_import:
        return Check(
            "canvas", Status.FAIL, f"{detail}; the token may not use the SIS Imports API: {access.refused}"
        )
    if settings.accounts and access.uuid not in settings.accounts:
        why = f"{PREFIX}ACCOUNTS does not list this UUID: the daemon would reject its events"
        return Check("canvas", Status.FAIL, f"{detail}; {why}")
    return Check("canvas", Status.OK, f"{detail}; the token may use the SIS Imports API")


def _ago(at: datetime) -> str:
    seconds = max(0.0, (datetime.now(UTC) - at).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago ({at:%Y-%m-%d %H:%M}Z)"
    return f"{seconds:.0f}s ago ({at:%Y-%m-%d %H:%M}Z)"
