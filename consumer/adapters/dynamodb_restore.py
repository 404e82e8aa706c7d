"""Copying what a SQLite store knows into a DynamoDB table (`sis-consumer store copy`).

Every write is conditioned on the item being absent, so a second run changes nothing. Imports
arrive as their records (their effects were counted where they happened), submissions keep their
ids (the id counter moves past them), results keep when they were fetched, a drop-folder
object's submission keeps its claim on the object version, and each account's recent successful
runs become its history (and last success). The journal stays in the SQLite file.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

from consumer.adapters import dynamodb_writes as w
from consumer.adapters.dynamodb_io import ATTEMPTS, Conflict, Dynamo
from consumer.adapters.dynamodb_schema import PRESENT, import_key, n, record_item, s, submission_item, ts
from consumer.core.learned import Run, run_of
from consumer.core.tracker import ImportRecord
from consumer.errors import StoreUnavailable
from consumer.ports import Export, SavedResult


async def restore(db: Dynamo, export: Export) -> Counter[str]:
    """Write `export` into the table; counts what was copied and what was there already."""
    counts: Counter[str] = Counter()
    fetched = {(r.account, r.sis_batch_id) for r in export.results}
    for record in export.records:
        item = record_item(record, 1)
        if record.finished_at is not None and record.key not in fetched:
            item["result_due"] = s(ts(record.finished_at))
        counts["imports" if await _put_new(db, item) else "imports already there"] += 1
    for submission in export.submissions:
        assert submission.id is not None
        copied = await _put_new(db, submission_item(submission, submission.id))
        counts["submissions" if copied else "submissions already there"] += 1
        if copied and submission.source is not None and submission.reported != "retried":
            claim, due = w.claim_object(submission.source, submission.id)
            await _put_new(db, claim["Put"]["Item"])
            if submission.reported is None:
                await _put_new(db, due["Put"]["Item"])
    if export.submissions:
        await _counter_past(db, max(x.id or 0 for x in export.submissions))
    for result in export.results:
        counts["results" if await _put_result(db, result) else "results already there"] += 1
    for account, runs in _runs(export.records).items():
        await remember_runs(db, account, runs)
    return counts


async def remember_runs(db: Dynamo, account: str, runs: Sequence[Run]) -> None:
    """Merge successful runs into the account's history (`store copy`): read, merge, write if
    unchanged since; a second copy changes nothing."""
    key = w.account_key(account)
    for _ in range(ATTEMPTS):
        write = w.rewritten(account, await db.get(key), runs)
        if write is None:
            return
        try:
            await db.write([write])
        except Conflict:
            continue
        return
    raise StoreUnavailable(f"dynamodb: the history of {account} kept changing under us; copy again")


async def _put_new(db: Dynamo, item: dict[str, Any]) -> bool:
    try:
        await db.write([{"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}])
    except Conflict:
        return False
    return True


async def _counter_past(db: Dynamo, highest: int) -> None:
    update = {
        "Key": w.COUNTER,
        "UpdateExpression": "SET #n = :n",
        "ConditionExpression": "attribute_not_exists(#n) OR #n < :n",
        "ExpressionAttributeNames": {"#n": "n"},
        "ExpressionAttributeValues": {":n": n(highest)},
    }
    with contextlib.suppress(Conflict):  # the table's submissions are already past them
        await db.write([{"Update": update}])


async def _put_result(db: Dynamo, result: SavedResult) -> bool:
    key = import_key(result.account, result.sis_batch_id)
    item = {
        "pk": key["pk"],
        "sk": s("RESULT"),
        "kind": s("result"),
        "account": s(result.account),
        "sis_batch_id": n(result.sis_batch_id),
        "summary": s(json.dumps(result.summary)),
        "fetched_at": s(ts(result.fetched_at)),
    }
    if not await _put_new(db, item):
        return False
    expression, values = "SET result_fetched = :yes", {":yes": s(PRESENT)}
    if result.look_again_at is not None:
        expression += ", result_due = :due, result_look = :yes"
        values[":due"] = s(ts(result.look_again_at))
    update = {
        "Key": key,
        "UpdateExpression": expression,
        "ConditionExpression": "attribute_exists(pk)",
        "ExpressionAttributeValues": values,
    }
    with contextlib.suppress(Conflict):  # a result of an import the source never recorded
        await db.write([{"Update": update}])
    return True


def _runs(records: list[ImportRecord]) -> dict[str, list[Run]]:
    """Each account's successful runs, for its history (and last success) in the table."""
    runs: dict[str, list[Run]] = {}
    for record in records:
        run = run_of(record)
        if run is not None:
            runs.setdefault(record.account, []).append(run)
    return runs
