"""The writes of the DynamoDB store, as TransactWriteItems entries. Pure: building, not sending.

Each function returns one entry (`{"Put": ...}`, `{"Update": ...}`, `{"ConditionCheck": ...}`)
without `TableName`; `Dynamo.write` sends one alone or several in one transaction.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Final

from consumer.adapters.dynamodb_schema import (
    PRESENT,
    TTL_ATTRIBUTE,
    Item,
    history_from_item,
    import_key,
    n,
    record_item,
    request_key,
    run_attribute,
    s,
    submission_key,
    ts,
)
from consumer.core.learned import Run, remember
from consumer.core.stuck import StuckVerdict
from consumer.core.submission import SourceObject
from consumer.core.tracker import Applied, ImportRecord, Observation, encode_effects
from consumer.ports import LeaseState, LeaseToken

Write = dict[str, Any]

REQUEST_DAYS: Final = 30
"""How long a request join point is kept: a POST's answer comes within minutes."""
CARRIED: Final = ("outbox", "unclaimed", "result_due", "result_look", "result_fetched")
"""Attributes of an import item that are not the record: a rewrite keeps them."""
ACCOUNTS: Final = s("ACCOUNTS")
LAST_EVENT: Final = {"pk": s("META"), "sk": s("LAST_EVENT")}
EXPECTED: Final = "EXPECTED#"
COUNTER: Final = {"pk": s("COUNTER"), "sk": s("SUBMISSION")}
INTAKE: Final = s("INTAKE")
STUCK: Final = s("STUCK")


def expected_key(account: str) -> Item:
    """When a daemon first expected successes of `account` (`expected_since`)."""
    return {"pk": s("META"), "sk": s(EXPECTED + account)}


def version(item: Item | None) -> int:
    return 0 if item is None else int(item["version"]["N"])


def if_version(item: Item | None) -> dict[str, Any]:
    """The condition of every rewrite: nobody changed the item since it was read."""
    if item is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {
        "ConditionExpression": "#v = :v",
        "ExpressionAttributeNames": {"#v": "version"},
        "ExpressionAttributeValues": {":v": item["version"]},
    }


def put_import(
    item: Item | None, old: ImportRecord | None, result: Applied, now: datetime, owner: str | None
) -> Write:
    """The import's new item: the record, its effects in the outbox (claimed by `owner`, or left
    for a daemon to claim), and its result due once it first finishes."""
    new = record_item(result.record, version(item) + 1)
    for name in CARRIED:
        if item is not None and name in item:
            new[name] = item[name]
    if result.effects:
        entry: Item = {"at": s(ts(now)), "effects": s(encode_effects(result.effects))}
        if owner is not None:
            entry["by"] = s(owner)
        else:
            new["unclaimed"] = s(PRESENT)
        outbox = dict(new.get("outbox", {"M": {}})["M"])
        outbox[uuid.uuid4().hex[:12]] = {"M": entry}
        new["outbox"] = {"M": outbox}
    finished_at = result.record.finished_at
    if finished_at is not None and (old is None or old.outcome is None) and "result_fetched" not in new:
        new["result_due"] = s(ts(finished_at))
    return {"Put": {"Item": new, **if_version(item)}}


def journal(
    obs: Observation, now: datetime, message_id: str | None, result: Applied, retention: float
) -> Write:
    entry: Item = {
        "pk": import_key(obs.account, obs.sis_batch_id)["pk"],
        "sk": s(f"JOURNAL#{ts(now)}#{uuid.uuid4().hex[:8]}"),
        "kind": s("journal"),
        "source": s(obs.source),
        "observed_state": s(obs.state.value),
        "observed_at": s(ts(obs.at)),
        "verdict": s(result.verdict.value),
        "effects": s(",".join(type(e).__name__ for e in result.effects)),
        TTL_ATTRIBUTE: n(int(now.timestamp() + retention)),
    }
    if message_id is not None:
        entry["message_id"] = s(message_id)
    if obs.note is not None:
        entry["note"] = s(obs.note)
    return {"Put": {"Item": entry}}


def account_key(account: str) -> Item:
    return {"pk": ACCOUNTS, "sk": s(account)}


def append_run(account: str, run: Run) -> Write:
    """Add a successful run to the account's history: one update, no read, no condition, so that
    replicas finishing imports of one account at once never conflict. Readers merge and trim."""
    return {
        "Update": {
            "Key": account_key(account),
            "UpdateExpression": "SET #r = list_append(if_not_exists(#r, :none), :run)",
            "ExpressionAttributeNames": {"#r": "runs"},
            "ExpressionAttributeValues": {":none": {"L": []}, ":run": {"L": [run_attribute(run)]}},
        }
    }


def rewritten(account: str, item: Item | None, runs: Iterable[Run] = ()) -> Write | None:
    """The account's item holding only its latest runs, `runs` added (`store copy`, and compacting
    a list that appends have grown); written only if the list is still as read. None when it
    would not change."""
    stored = [] if item is None else item.get("runs", {"L": []})["L"]
    kept = remember([*history_from_item(item).runs, *runs])
    listed = [run_attribute(r) for r in kept]
    if listed == stored:
        return None
    last = history_from_item({**(item or {}), "runs": {"L": listed}}).last_success
    new: Item = {**account_key(account), "runs": {"L": listed}}
    if last is not None:
        new["last_success"] = s(ts(last))
    if item is None:
        condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
    elif "runs" not in item:
        condition = {
            "ConditionExpression": "attribute_not_exists(#r)",
            "ExpressionAttributeNames": {"#r": "runs"},
        }
    else:
        condition = {
            "ConditionExpression": "size(#r) = :n",
            "ExpressionAttributeNames": {"#r": "runs"},
            "ExpressionAttributeValues": {":n": n(len(stored))},
        }
    return {"Put": {"Item": new, **condition}}


def at_request(request_id: str, half: dict[str, Item]) -> Write:
    """Write one half of a request's join point (the import's key, or the submission), and get
    the item back: whoever writes second sees both halves and joins."""
    names = {f"#a{i}": k for i, k in enumerate(half)} | {"#e": TTL_ATTRIBUTE}
    sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(half)))
    values = {f":a{i}": v for i, v in enumerate(half.values())} | {":e": _expiry()}
    return {
        "Update": {
            "Key": request_key(request_id),
            "UpdateExpression": f"SET {sets}, #e = :e",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "ALL_NEW",
        }
    }


def link(submission_id: int, record: ImportRecord) -> Write:
    """Write down which import a 400's submission left behind."""
    return {
        "Update": {
            "Key": submission_key(submission_id),
            "UpdateExpression": "SET sis_batch_id = :b, account = :a",
            "ConditionExpression": "attribute_not_exists(sis_batch_id)",
            "ExpressionAttributeValues": {":b": n(record.sis_batch_id), ":a": s(record.account)},
        }
    }


def claim(item: Item, owner: str) -> Write:
    """Claim every unclaimed effect of the import for `owner`, if the item is as it was read."""
    tokens = [t for t, e in item["outbox"]["M"].items() if "by" not in e["M"]]
    names = {"#v": "version", "#o": "outbox", "#by": "by"} | {f"#e{i}": t for i, t in enumerate(tokens)}
    sets = ", ".join(f"#o.#e{i}.#by = :me" for i in range(len(tokens)))
    return {
        "Update": {
            "Key": {"pk": item["pk"], "sk": item["sk"]},
            "UpdateExpression": f"SET {sets}, #v = #v + :one REMOVE unclaimed",
            "ConditionExpression": "#v = :v",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":me": s(owner), ":one": n(1), ":v": item["version"]},
        }
    }


def lease_key(name: str) -> Item:
    return {"pk": s("LEASE"), "sk": s(name)}


def put_lease(name: str, state: LeaseState, expected_rvn: str | None) -> Write:
    """Create the lease (`expected_rvn` None), or renew / take it over from that rvn."""
    item = {**lease_key(name), "owner": s(state.owner), "rvn": s(state.rvn), "fence": n(state.fence)}
    return {"Put": {"Item": item, **if_rvn(expected_rvn)}}


def if_rvn(rvn: str | None) -> dict[str, Any]:
    if rvn is None:
        return {"ConditionExpression": "attribute_not_exists(pk)"}
    return {"ConditionExpression": "rvn = :rvn", "ExpressionAttributeValues": {":rvn": s(rvn)}}


def holds(lease: LeaseToken) -> Write:
    """A transaction's guard: the lease is still held by this holder (its fencing token)."""
    return {
        "ConditionCheck": {
            "Key": lease_key(lease.name),
            "ConditionExpression": "#o = :o AND fence = :f",
            "ExpressionAttributeNames": {"#o": "owner"},
            "ExpressionAttributeValues": {":o": s(lease.state.owner), ":f": n(lease.state.fence)},
        }
    }


def object_key(source: SourceObject) -> Item:
    # JSON keeps the three parts apart whatever characters an S3 key holds.
    parts = json.dumps([source.bucket, source.key, source.version], ensure_ascii=False)
    return {"pk": s(f"OBJECT#{parts}"), "sk": s("OBJECT")}


def unreported_key(submission_id: int) -> Item:
    return {"pk": INTAKE, "sk": s(f"{submission_id:012d}")}


def claim_object(source: SourceObject, submission_id: int) -> list[Write]:
    """The claim on an object version (only if nobody holds it) and its place among the
    submissions to report: written in the transaction that records the submission."""
    claim = {**object_key(source), "kind": s("object"), "submission_id": n(submission_id)}
    due = {**unreported_key(submission_id), "submission_id": n(submission_id)}
    return [
        {"Put": {"Item": claim, "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Put": {"Item": due}},
    ]


def reported(submission_id: int, status: str) -> list[Write]:
    """Write the report onto the submission and take it off the list to report."""
    return [
        {
            "Update": {
                "Key": submission_key(submission_id),
                "UpdateExpression": "SET reported = :r",
                "ConditionExpression": "attribute_exists(pk)",
                "ExpressionAttributeValues": {":r": s(status)},
            }
        },
        {"Delete": {"Key": unreported_key(submission_id)}},
    ]


def account_ref_key(canvas_url: str, account_ref: str) -> Item:
    return {"pk": s(f"ACCOUNTREF#{canvas_url}#{account_ref}"), "sk": s("ACCOUNTREF")}


def stuck_key(account: str, sis_batch_id: int) -> Item:
    return {"pk": STUCK, "sk": s(f"{account}#{sis_batch_id}")}


def stuck_item(account: str, sis_batch_id: int, verdict: StuckVerdict) -> Item:
    return {
        **stuck_key(account, sis_batch_id),
        "kind": s("stuck"),
        "account": s(account),
        "sis_batch_id": n(sis_batch_id),
        "reason": s(verdict.reason.value),
        "since": s(ts(verdict.since)),
    }


def _expiry() -> Item:
    return n(int(time.time()) + REQUEST_DAYS * 86400)
