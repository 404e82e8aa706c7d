"""The AWS store: one DynamoDB table shared by every replica (its reads are in `dynamodb_reads`).

Every import item carries a `version`. A change is a consistent read, `tracker.apply` in memory,
and a PutItem conditioned on the version that was read; when another replica wrote first, the
change is read and applied again. The tracker's merges are commutative, so retries converge.
What follows a committed change (its journal entry, the account's run history, a link to a
submission) is written after it, each on its own: the commit is what the message's ack waits
for, and a redelivery finds the record already changed and writes nothing more. So the common
path of a SIS event is a read and a write (plus the journal), not a transaction, which would cost
twice the write units.

Joining an import to our submission: the POST's answer writes the import it created (by id) in
the same transaction as the submission, whichever came first. A 400 names no import, only the
request: both sides then meet at the request's join point item, each writing its half and
reading back the item, so of two concurrent writers the second sees both halves and joins.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import datetime
from typing import Any

from consumer.adapters import dynamodb_writes as w
from consumer.adapters.dynamodb_io import ATTEMPTS, Conflict, Dynamo, RequestHook, open_dynamo
from consumer.adapters.dynamodb_reads import DynamoReads
from consumer.adapters.dynamodb_schema import (
    PRESENT,
    Item,
    import_key,
    n,
    record_from_item,
    request_key,
    s,
    submission_from_item,
    submission_item,
    submission_key,
    ts,
)
from consumer.adapters.lease_dynamodb import DynamoLeases
from consumer.core.learned import run_of
from consumer.core.stuck import StuckReason, verdicts_changed
from consumer.core.submission import SourceObject, Submission, SubmissionStatus
from consumer.core.tracker import (
    Applied,
    Claimed,
    ImportRecord,
    Observation,
    Origin,
    apply,
    creator,
    decode_effects,
    join_answer,
    join_event,
    wants_submission,
    worth_journaling,
)
from consumer.errors import AlreadySubmitted, StoreUnavailable
from consumer.ports import LeaseToken


class DynamoStore(DynamoReads):
    def __init__(self, db: Dynamo, owner: str | None, retention_seconds: float) -> None:
        super().__init__(db)
        self._owner = owner
        self._retention = retention_seconds

    def leases(self) -> DynamoLeases:
        """Replicas elect their leader through a lease item in this same table."""
        return DynamoLeases(self.db)

    # -- imports ---------------------------------------------------------------------------------

    async def apply(self, obs: Observation, now: datetime, message_id: str | None = None) -> Applied:
        for _ in range(ATTEMPTS):
            try:
                result, join_point = await self._apply(obs, now)
            except Conflict:
                continue
            await self._after(result, obs, now, message_id, join_point)
            if obs.request_id is not None and result.record.request_id == obs.request_id:
                result = await self._meet(result, obs.request_id, join_point, now)
            return result
        raise StoreUnavailable(f"dynamodb: import {obs.sis_batch_id} kept changing under us; retry later")

    async def _apply(self, obs: Observation, now: datetime) -> tuple[Applied, Item | None]:
        """Read, apply, write on the version read: the one step that must not interleave."""
        key = import_key(obs.account, obs.sis_batch_id)
        if obs.request_id is None:
            item, join_point = await self.db.get(key), None
        else:
            item, join_point = await self.db.get_many([key, request_key(obs.request_id)])
        old = None if item is None else record_from_item(item)
        result = apply(old, obs, now)
        result = join_event(old, result, await self._creator(result.record, join_point), now)
        if old is None or result.changed:
            await self.db.write([w.put_import(item, old, result, now, self._owner)])
        return result, join_point

    async def _after(
        self,
        result: Applied,
        obs: Observation,
        now: datetime,
        message_id: str | None,
        join_point: Item | None,
    ) -> None:
        """What follows a committed change, each its own write: the journal entry, the account's
        run history, the link of a 400's submission to the batch it left behind."""
        if worth_journaling(obs, result):
            await self.db.write([w.journal(obs, now, message_id, result, self._retention)])
        run = run_of(result.record) if result.effects else None
        if run is not None:  # a success, or a late stage time of one
            await self.db.write([w.append_run(result.record.account, run)])
        submission_id = None if join_point is None else join_point.get("submission_id")
        if submission_id is not None and result.record.origin is Origin.SUBMITTED:
            with contextlib.suppress(Conflict):  # linked already
                await self.db.write([w.link(int(submission_id["N"]), result.record)])

    async def _meet(
        self, result: Applied, request_id: str, join_point: Item | None, now: datetime
    ) -> Applied:
        """Leave the import's key at its request's join point, the first time; if a 400's
        submission got there meanwhile, join it now."""
        if join_point is not None and "import_account" in join_point:
            return result
        record = result.record
        half = {"import_account": s(record.account), "import_batch": n(record.sis_batch_id)}
        both = (await self.db.write([w.at_request(request_id, half)]))["Attributes"]
        if "submission_id" not in both or record.origin is Origin.SUBMITTED:
            return result
        joined = await self._join_request(
            record.account, record.sis_batch_id, int(both["submission_id"]["N"]), now
        )
        return joined or result

    async def _join_request(
        self, account: str, sis_batch_id: int, submission_id: int, now: datetime
    ) -> Applied | None:
        """Join an import to the 400's submission that left it behind (found at their request)."""
        found = await self.db.get(submission_key(submission_id))
        if found is None:
            return None
        submission = submission_from_item(found)
        for _ in range(ATTEMPTS):
            item = await self.db.get(import_key(account, sis_batch_id))
            if item is None:
                return None
            old = record_from_item(item)
            if creator([submission], old) is None:
                return None
            result = join_answer(old, None, submission.submitted_at, now)
            try:
                if result.changed:
                    await self.db.write([w.put_import(item, old, result, now, self._owner)])
            except Conflict:
                continue
            with contextlib.suppress(Conflict):  # linked already
                await self.db.write([w.link(submission_id, old)])
            return result
        raise StoreUnavailable(f"dynamodb: import {sis_batch_id} kept changing under us; retry later")

    async def _creator(self, record: ImportRecord, join_point: Item | None) -> Submission | None:
        if not wants_submission(record) or join_point is None or "submission_id" not in join_point:
            return None
        found = await self.db.get(submission_key(int(join_point["submission_id"]["N"])))
        return None if found is None else creator([submission_from_item(found)], record)

    async def note_last_event(self, at: datetime) -> None:
        update = {
            "Key": w.LAST_EVENT,
            "UpdateExpression": "SET #at = :t",
            "ConditionExpression": "attribute_not_exists(#at) OR #at < :t",
            "ExpressionAttributeNames": {"#at": "at"},
            "ExpressionAttributeValues": {":t": s(ts(at))},
        }
        with contextlib.suppress(Conflict):  # a later one is noted already
            await self.db.write([{"Update": update}])

    async def flush(self) -> None:
        """Nothing to do: DynamoDB answers a write once it is durable."""

    # -- submissions -----------------------------------------------------------------------------

    async def record_submission(self, submission: Submission) -> int:
        response = await self.db.call(
            "UpdateItem",
            TableName=self.db.table,
            Key=w.COUNTER,
            UpdateExpression="ADD #n :one",
            ExpressionAttributeNames={"#n": "n"},
            ExpressionAttributeValues={":one": n(1)},
            ReturnValues="UPDATED_NEW",
        )
        submission_id = int(response["Attributes"]["n"]["N"])
        item = submission_item(submission, submission_id)
        put = {"Put": {"Item": item, "ConditionExpression": "attribute_not_exists(pk)"}}
        source = submission.source
        if source is None:
            await self.db.write([put])
            return submission_id
        try:  # the claim on the object version, the submission and its place to report: together
            await self.db.write([*w.claim_object(source, submission_id), put])
        except Conflict as conflict:
            if 0 not in conflict.failed:
                raise StoreUnavailable(f"dynamodb: submission {submission_id} exists already") from None
            claim = await self.db.get(w.object_key(source))
            first = submission_id if claim is None else int(claim["submission_id"]["N"])
            raise AlreadySubmitted(f"{source.key} ({source.version}) was submitted", first) from None
        return submission_id

    async def release_object(self, source: SourceObject) -> None:
        claim = await self.db.get(w.object_key(source))
        if claim is None:
            return
        submission_id = claim["submission_id"]
        give_back = {
            "Delete": {
                "Key": w.object_key(source),
                "ConditionExpression": "submission_id = :id",
                "ExpressionAttributeValues": {":id": submission_id},
            }
        }
        with contextlib.suppress(Conflict):  # given back already
            await self.db.write([give_back, *w.reported(int(submission_id["N"]), "retried")])

    async def unreported(self, limit: int = 50) -> list[Submission]:
        query = self.db.pages(
            "Query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": w.INTAKE},
            ConsistentRead=True,
            Limit=limit,
        )
        keys = []
        async for item in query:
            keys.append(submission_key(int(item["submission_id"]["N"])))
            if len(keys) >= limit:
                break
        found = await self.db.get_many(keys) if keys else []
        return [x for x in (submission_from_item(i) for i in found if i is not None) if x.reported is None]

    async def mark_reported(self, submission_id: int, status: str) -> None:
        with contextlib.suppress(Conflict):  # a submission that is not there has nothing to report
            await self.db.write(w.reported(submission_id, status))

    async def answer_submission(
        self,
        submission_id: int,
        *,
        status: SubmissionStatus,
        now: datetime,
        http_status: int | None = None,
        error: str | None = None,
        request_id: str | None = None,
        observation: Observation | None = None,
    ) -> Applied | None:
        found = await self.db.get(submission_key(submission_id))
        if found is None:
            raise StoreUnavailable(f"dynamodb: submission {submission_id} is not in the store")
        submission = submission_from_item(found)
        answered = replace(
            submission,
            status=status,
            http_status=http_status,
            error=error,
            request_id=request_id,
            answered_at=now,
            sis_batch_id=submission.sis_batch_id if observation is None else observation.sis_batch_id,
        )
        if observation is not None:
            return await self._answer_with_import(answered, submission_id, observation, now)
        await self.db.write([{"Put": {"Item": submission_item(answered, submission_id)}}])
        if request_id is None or status is not SubmissionStatus.REJECTED:
            return None
        # A 400 that may have left a batch behind: meet its event at the request's join point.
        both = (await self.db.write([w.at_request(request_id, {"submission_id": n(submission_id)})]))[
            "Attributes"
        ]
        if "import_account" not in both:
            return None
        return await self._join_request(
            both["import_account"]["S"], int(both["import_batch"]["N"]), submission_id, now
        )

    async def _answer_with_import(
        self, answered: Submission, submission_id: int, obs: Observation, now: datetime
    ) -> Applied:
        """The import the POST created and the submission move together, in one transaction."""
        for _ in range(ATTEMPTS):
            item = await self.db.get(import_key(obs.account, obs.sis_batch_id))
            old = None if item is None else record_from_item(item)
            result = join_answer(old, obs, answered.submitted_at, now)
            try:
                await self.db.write(
                    [
                        w.put_import(item, old, result, now, self._owner),
                        {"Put": {"Item": submission_item(answered, submission_id)}},
                    ]
                )
            except Conflict:
                continue
            await self._after(result, obs, now, f"submission:{submission_id}", None)
            return result
        raise StoreUnavailable(f"dynamodb: import {obs.sis_batch_id} kept changing under us; retry later")

    async def submission(self, submission_id: int) -> Submission | None:
        item = await self.db.get(submission_key(submission_id))
        return None if item is None else submission_from_item(item)

    async def submissions(self) -> dict[tuple[str, int], Submission]:
        scan = self.db.pages(
            "Scan",
            FilterExpression="kind = :k AND attribute_exists(account) AND attribute_exists(sis_batch_id)",
            ExpressionAttributeValues={":k": s("submission")},
        )
        # Latest first, so that the earliest submission of an import wins, as in `creator`.
        found = sorted([submission_from_item(i) async for i in scan], key=lambda x: x.id or 0, reverse=True)
        return {(x.account or "", x.sis_batch_id or 0): x for x in found}

    async def cached_account(self, canvas_url: str, account_ref: str) -> tuple[str, str] | None:
        item = await self.db.get(w.account_ref_key(canvas_url, account_ref))
        return None if item is None else (item["account"]["S"], item["account_id"]["S"])

    async def cache_account(self, canvas_url: str, account_ref: str, account: str, account_id: str) -> None:
        item = {
            **w.account_ref_key(canvas_url, account_ref),
            "account": s(account),
            "account_id": s(account_id),
        }
        await self.db.write([{"Put": {"Item": item}}])

    # -- stuck verdicts --------------------------------------------------------------------------

    async def save_stuck(self, verdicts: Mapping[tuple[str, int], StuckReason], now: datetime) -> None:
        put, gone = verdicts_changed(await self.stuck(), verdicts, now)
        writes = [{"Delete": {"Key": w.stuck_key(*key)}} for key in gone]
        writes += [{"Put": {"Item": w.stuck_item(*key, verdict)}} for key, verdict in put.items()]
        for write in writes:  # a handful at most; after a failure the watchdog saves them all again
            await self.db.write([write])

    # -- results ---------------------------------------------------------------------------------

    async def save_result(
        self,
        account: str,
        sis_batch_id: int,
        summary: dict[str, Any],
        now: datetime,
        look_again_at: datetime | None,
    ) -> bool:
        key = import_key(account, sis_batch_id)
        result = {
            "pk": key["pk"],
            "sk": s("RESULT"),
            "kind": s("result"),
            "account": s(account),
            "sis_batch_id": n(sis_batch_id),
            "summary": s(json.dumps(summary)),
            "fetched_at": s(ts(now)),
        }
        put = await self.db.call("PutItem", TableName=self.db.table, Item=result, ReturnValues="ALL_OLD")
        values: dict[str, Any] = {":one": n(1), ":yes": s(PRESENT)}
        expression = "SET #v = #v + :one, result_fetched = :yes"
        if look_again_at is None:
            expression += " REMOVE result_due, result_look"
        else:
            expression += ", result_due = :due, result_look = :yes"
            values[":due"] = s(ts(look_again_at))
        update = {
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": "attribute_exists(pk)",
            "ExpressionAttributeNames": {"#v": "version"},
            "ExpressionAttributeValues": values,
        }
        with contextlib.suppress(Conflict):  # a result of an import never seen here: nothing was due
            await self.db.write([{"Update": update}])
        return "Attributes" not in put

    # -- the outbox ------------------------------------------------------------------------------

    async def claim_effects(self, lease: LeaseToken | None = None, limit: int = 100) -> list[Claimed]:
        if self._owner is None:
            raise StoreUnavailable("only a daemon claims effects: this store was opened without an owner")
        keys = [{"pk": i["pk"], "sk": i["sk"]} async for i in self._index("outbox", "unclaimed")][:limit]
        claimed: list[Claimed] = []
        for key in keys:
            try:
                found = await self._claim(key, self._owner, lease)
            except _LeaseLost:
                break
            if found is not None:
                claimed.append(found)
        return claimed

    async def _claim(self, key: Item, owner: str, lease: LeaseToken | None) -> Claimed | None:
        for _ in range(ATTEMPTS):
            item = await self.db.get(key)  # the index's copy may be stale: claim what is there now
            if item is None or "unclaimed" not in item:
                return None
            writes = [w.claim(item, owner)] if lease is None else [w.holds(lease), w.claim(item, owner)]
            try:
                await self.db.write(writes)
            except Conflict as conflict:
                if lease is not None and 0 in conflict.failed:
                    raise _LeaseLost() from conflict
                continue
            entries = [e["M"] for e in item["outbox"]["M"].values() if "by" not in e["M"]]
            effects = tuple(e for entry in entries for e in decode_effects(entry["effects"]["S"]))
            return Claimed(record_from_item(item), effects)
        return None


class _LeaseLost(Exception):
    """The lease a claim depended on is held by someone else now."""


@asynccontextmanager
async def open_dynamodb(
    table: str,
    *,
    region: str | None,
    owner: str | None = None,
    retention_seconds: float = 90 * 86400,
    hook: RequestHook | None = None,
) -> AsyncIterator[DynamoStore]:
    """Open the table; `TableMissing` (one clear line) when it does not exist."""
    async with open_dynamo(table, region=region, hook=hook or (lambda _op, _result: None)) as db:
        await db.call("DescribeTable", TableName=table)
        yield DynamoStore(db, owner, retention_seconds)
