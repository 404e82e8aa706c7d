"""The DynamoDB table: its keys and indexes, and how records map to items and back.

One table holds everything, told apart by the partition key's prefix:

| item | pk | sk |
|---|---|---|
| an import | `IMPORT#<account>#<sis_batch_id>` | `IMPORT` |
| its journal | same | `JOURNAL#<recorded_at>#<random>` (expires with `expires_at`) |
| its result | same | `RESULT` |
| a submission | `SUBMISSION#<id>` | `SUBMISSION` |
| a drop-folder object version's claim | `OBJECT#["<bucket>", "<key>", "<version>"]` | `OBJECT` |
| a drop-folder submission not yet reported | `INTAKE` | `<submission id, 12 digits>` |
| the submission id counter | `COUNTER` | `SUBMISSION` |
| a request's join point | `REQUEST#<X-Request-Context-Id>` | `REQUEST` (expires) |
| an account learned by `submit` | `ACCOUNTREF#<canvas url>#<ref>` | `ACCOUNTREF` |
| an account's last success and recent runs | `ACCOUNTS` | `<account>` |
| the latest Live Event seen | `META` | `LAST_EVENT` |
| when the daemon first expected an account's successes | `META` | `EXPECTED#<account>` |
| a stuck verdict of the watchdog | `STUCK` | `<account>#<sis_batch_id>` |
| a lease | `LEASE` | `<name>` |

Three sparse indexes keep the daemon's periodic reads to queries: `unfinished` (imports Canvas may
still work on), `outbox` (imports with effects nobody counted yet) and `results_due` (finished
imports whose SisImport is to be fetched). An attribute is present only while its condition holds,
so each index holds only the few items the daemon looks for. The first two are keyed on a constant:
they hold a handful of items at any time and are written a few times per import.

`sis-consumer store init` creates the table from `table_definition`; the CloudFormation template
declares the same (a test holds the two together).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final

from consumer.core.learned import AccountHistory, Run, remember
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import AT_REST, ImportRecord, Origin, State

Item = dict[str, Any]
"""A DynamoDB item in the low-level wire form: `{"name": {"S": "value"}}`."""

PRESENT: Final = "1"
"""The value of the constant index keys `unfinished` and `unclaimed`."""
TTL_ATTRIBUTE: Final = "expires_at"

KEY_ATTRIBUTES: Final[Mapping[str, str]] = MappingProxyType(
    {"pk": "S", "sk": "S", "unfinished": "S", "unclaimed": "S", "account": "S", "result_due": "S"}
)
INDEXES: Final[Mapping[str, tuple[tuple[str, str], ...]]] = MappingProxyType(
    {
        "unfinished": (("unfinished", "HASH"),),
        "outbox": (("unclaimed", "HASH"),),
        "results_due": (("account", "HASH"), ("result_due", "RANGE")),
    }
)


def table_definition(table: str) -> dict[str, Any]:
    """The CreateTable request: on-demand, with the three sparse indexes."""
    return {
        "TableName": table,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": t} for k, t in KEY_ATTRIBUTES.items()],
        "KeySchema": [
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [{"AttributeName": a, "KeyType": t} for a, t in keys],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, keys in INDEXES.items()
        ],
        "SSESpecification": {"Enabled": True},
    }


def import_key(account: str, sis_batch_id: int) -> Item:
    return {"pk": {"S": f"IMPORT#{account}#{sis_batch_id}"}, "sk": {"S": "IMPORT"}}


def submission_key(submission_id: int) -> Item:
    return {"pk": {"S": f"SUBMISSION#{submission_id}"}, "sk": {"S": "SUBMISSION"}}


def request_key(request_id: str) -> Item:
    return {"pk": {"S": f"REQUEST#{request_id}"}, "sk": {"S": "REQUEST"}}


def ts(value: datetime) -> str:
    # Fixed-width UTC text sorts chronologically, which the `results_due` range key relies on.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def s(value: str) -> Item:
    return {"S": value}


def n(value: int | float) -> Item:
    return {"N": str(value)}


def _optional(item: Item, name: str, value: str | None) -> None:
    if value is not None:
        item[name] = {"S": value}


def _text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return None if value is None else str(value["S"])


def _time(item: Mapping[str, Any], name: str) -> datetime | None:
    text = _text(item, name)
    return None if text is None else datetime.fromisoformat(text)


def record_item(record: ImportRecord, version: int) -> Item:
    """The import's item; `unfinished` is present only while Canvas may still work on it."""
    item: Item = {
        **import_key(record.account, record.sis_batch_id),
        "kind": s("import"),
        "version": n(version),
        "account": s(record.account),
        "sis_batch_id": n(record.sis_batch_id),
        "state": s(record.state.value),
        "origin": s(record.origin.value),
        "stage_times": {"M": {state.value: s(ts(at)) for state, at in sorted(record.stage_times.items())}},
        "first_seen_at": s(ts(record.first_seen_at)),
        "last_news_at": s(ts(record.last_news_at)),
    }
    if record.state not in AT_REST:
        item["unfinished"] = s(PRESENT)
    _optional(item, "outcome", None if record.outcome is None else record.outcome.value)
    _optional(item, "account_id", record.account_id)
    _optional(item, "submitted_at", None if record.submitted_at is None else ts(record.submitted_at))
    _optional(item, "last_event_at", None if record.last_event_at is None else ts(record.last_event_at))
    _optional(item, "request_id", record.request_id)
    _optional(item, "developer_key_id", record.developer_key_id)
    _optional(item, "user_agent", record.user_agent)
    return item


def record_from_item(item: Mapping[str, Any]) -> ImportRecord:
    first_seen, last_news = _time(item, "first_seen_at"), _time(item, "last_news_at")
    assert first_seen is not None
    assert last_news is not None
    outcome = _text(item, "outcome")
    return ImportRecord(
        account=str(item["account"]["S"]),
        sis_batch_id=int(item["sis_batch_id"]["N"]),
        state=State(item["state"]["S"]),
        stage_times=MappingProxyType(
            {State(k): datetime.fromisoformat(v["S"]) for k, v in item["stage_times"]["M"].items()}
        ),
        first_seen_at=first_seen,
        last_news_at=last_news,
        account_id=_text(item, "account_id"),
        outcome=None if outcome is None else State(outcome),
        origin=Origin(item["origin"]["S"]),
        submitted_at=_time(item, "submitted_at"),
        last_event_at=_time(item, "last_event_at"),
        request_id=_text(item, "request_id"),
        developer_key_id=_text(item, "developer_key_id"),
        user_agent=_text(item, "user_agent"),
    )


def history_from_item(item: Mapping[str, Any] | None) -> AccountHistory:
    """An account item's last success and recent runs. `runs` is a list that writers append to
    without reading (one compact JSON string per run, in any order, an import possibly twice);
    `last_success` is what older versions and `store copy` wrote."""
    if item is None:
        return AccountHistory(None)
    runs = remember(
        Run(batch, datetime.fromisoformat(at), queued, importing)
        for batch, at, queued, importing in (json.loads(r["S"]) for r in item.get("runs", {"L": []})["L"])
    )
    times = [t for t in (_time(item, "last_success"), runs[0].finished_at if runs else None) if t is not None]
    return AccountHistory(max(times, default=None), runs)


def run_attribute(run: Run) -> Item:
    return s(json.dumps([run.sis_batch_id, ts(run.finished_at), run.queued_seconds, run.importing_seconds]))


def submission_item(submission: Submission, submission_id: int) -> Item:
    item: Item = {
        **submission_key(submission_id),
        "kind": s("submission"),
        "id": n(submission_id),
        "canvas_url": s(submission.canvas_url),
        "account_ref": s(submission.account_ref),
        "file_name": s(submission.file_name),
        "size": n(submission.size),
        "sha256": s(submission.sha256),
        "options": {"M": {k: s(v) for k, v in sorted(submission.options.items())}},
        "submitted_at": s(ts(submission.submitted_at)),
        "status": s(submission.status.value),
    }
    _optional(item, "account", submission.account)
    _optional(item, "account_id", submission.account_id)
    _optional(item, "error", submission.error)
    _optional(item, "request_id", submission.request_id)
    _optional(item, "answered_at", None if submission.answered_at is None else ts(submission.answered_at))
    if submission.http_status is not None:
        item["http_status"] = n(submission.http_status)
    if submission.sis_batch_id is not None:
        item["sis_batch_id"] = n(submission.sis_batch_id)
    _optional(item, "reported", submission.reported)
    source = submission.source
    if source is not None:
        fields = {"bucket": source.bucket, "key": source.key, "etag": source.etag}
        fields |= {k: v for k, v in (("version_id", source.version_id), ("sequencer", source.sequencer)) if v}
        item["source"] = {"M": {k: s(v) for k, v in fields.items()}}
    return item


def submission_from_item(item: Mapping[str, Any]) -> Submission:
    submitted_at = _time(item, "submitted_at")
    assert submitted_at is not None
    return Submission(
        id=int(item["id"]["N"]),
        canvas_url=str(item["canvas_url"]["S"]),
        account_ref=str(item["account_ref"]["S"]),
        account=_text(item, "account"),
        account_id=_text(item, "account_id"),
        file_name=str(item["file_name"]["S"]),
        size=int(item["size"]["N"]),
        sha256=str(item["sha256"]["S"]),
        options=MappingProxyType({k: str(v["S"]) for k, v in item["options"]["M"].items()}),
        submitted_at=submitted_at,
        status=SubmissionStatus(item["status"]["S"]),
        http_status=int(item["http_status"]["N"]) if "http_status" in item else None,
        error=_text(item, "error"),
        sis_batch_id=int(item["sis_batch_id"]["N"]) if "sis_batch_id" in item else None,
        request_id=_text(item, "request_id"),
        answered_at=_time(item, "answered_at"),
        source=_source(item),
        reported=_text(item, "reported"),
    )


def _source(item: Mapping[str, Any]) -> SourceObject | None:
    if "source" not in item:
        return None
    fields = {k: str(v["S"]) for k, v in item["source"]["M"].items()}
    return SourceObject(**fields)
