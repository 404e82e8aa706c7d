"""The DynamoDB store's reads: the queries of the watchdog, the reconciler and the commands.

Consistent reads where a decision follows (an import before it changes, the histories the
thresholds come from); the unfinished imports and the results due come from sparse indexes, so
neither the watchdog nor the reconciler ever scans the table. Only `imports` (a command) scans.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from consumer.adapters import dynamodb_writes as w
from consumer.adapters.dynamodb_io import Conflict, Dynamo
from consumer.adapters.dynamodb_schema import (
    PRESENT,
    Item,
    history_from_item,
    import_key,
    record_from_item,
    s,
    ts,
)
from consumer.core.learned import HISTORY_SIZE, AccountHistory
from consumer.core.stuck import StuckReason, StuckVerdict
from consumer.core.tracker import ImportRecord, State
from consumer.ports import JournalEntry


class DynamoReads:
    def __init__(self, db: Dynamo) -> None:
        self.db = db

    async def record(self, account: str, sis_batch_id: int) -> ImportRecord | None:
        item = await self.db.get(import_key(account, sis_batch_id))
        return None if item is None else record_from_item(item)

    async def records(
        self, *, state: State | None = None, since: datetime | None = None
    ) -> Sequence[ImportRecord]:
        # A Scan: `imports` is a command people run now and then, never the daemon's hot path.
        conditions, values = ["kind = :kind"], {":kind": s("import")}
        if state is not None:
            conditions.append("#state = :state")
            values[":state"] = s(state.value)
        if since is not None:
            conditions.append("first_seen_at >= :since")
            values[":since"] = s(ts(since))
        scan: dict[str, Any] = {
            "FilterExpression": " AND ".join(conditions),
            "ExpressionAttributeValues": values,
        }
        if state is not None:
            scan["ExpressionAttributeNames"] = {"#state": "state"}
        found = [record_from_item(i) async for i in self.db.pages("Scan", **scan)]
        return sorted(found, key=lambda r: (r.first_seen_at, r.sis_batch_id), reverse=True)

    async def unfinished(self) -> Sequence[ImportRecord]:
        return [record_from_item(i) async for i in self._index("unfinished", "unfinished")]

    async def last_successes(self) -> dict[str, datetime]:
        return {
            account: history.last_success
            for account, history in (await self.histories()).items()
            if history.last_success is not None
        }

    async def histories(self) -> dict[str, AccountHistory]:
        """The account items hold their own history (appended where a success is committed), so
        the watchdog's one Query on them is all it reads: no Scan, no index. A list that appends
        have grown past twice its size is compacted here, by whichever reader sees it first."""
        query = self.db.pages(
            "Query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": w.ACCOUNTS},
            ConsistentRead=True,
        )
        found: dict[str, AccountHistory] = {}
        async for item in query:
            account = item["sk"]["S"]
            found[account] = history_from_item(item)
            if len(item.get("runs", {"L": []})["L"]) > 2 * HISTORY_SIZE:
                compacted = w.rewritten(account, item)
                if compacted is not None:
                    with contextlib.suppress(Conflict):  # appended meanwhile: the next reader compacts
                        await self.db.write([compacted])
        return {account: history for account, history in found.items() if history.last_success is not None}

    async def last_event_received(self) -> datetime | None:
        item = await self.db.get(w.LAST_EVENT)
        return None if item is None else datetime.fromisoformat(item["at"]["S"])

    async def expected_since(self, accounts: Sequence[str], now: datetime) -> dict[str, datetime]:
        # The one write here: a mark put once per account (never overwritten), then read back.
        for account in accounts:
            mark = {**w.expected_key(account), "at": s(ts(now))}
            with contextlib.suppress(Conflict):  # expected before: the first time stands
                await self.db.write(
                    [{"Put": {"Item": mark, "ConditionExpression": "attribute_not_exists(pk)"}}]
                )
        found = await self.db.get_many([w.expected_key(a) for a in accounts]) if accounts else []
        return {
            item["sk"]["S"].removeprefix(w.EXPECTED): datetime.fromisoformat(item["at"]["S"])
            for item in found
            if item is not None
        }

    async def ping(self) -> None:
        await self.db.call("GetItem", TableName=self.db.table, Key=w.LAST_EVENT)

    async def journal(self, account: str, sis_batch_id: int) -> list[JournalEntry]:
        query = self.db.pages(
            "Query",
            KeyConditionExpression="pk = :pk AND begins_with(sk, :journal)",
            ExpressionAttributeValues={
                ":pk": import_key(account, sis_batch_id)["pk"],
                ":journal": s("JOURNAL#"),
            },
            ConsistentRead=True,
        )
        return [
            JournalEntry(
                recorded_at=datetime.fromisoformat(i["sk"]["S"].split("#")[1]),
                source=i["source"]["S"],
                state=State(i["observed_state"]["S"]),
                observed_at=datetime.fromisoformat(i["observed_at"]["S"]),
                verdict=i["verdict"]["S"],
                message_id=i["message_id"]["S"] if "message_id" in i else None,
                note=i["note"]["S"] if "note" in i else None,
            )
            async for i in query
        ]

    async def results_due(
        self, account: str, now: datetime, limit: int = 20
    ) -> list[tuple[ImportRecord, bool]]:
        query = self.db.pages(
            "Query",
            IndexName="results_due",
            KeyConditionExpression="account = :a AND result_due <= :now",
            ExpressionAttributeValues={":a": s(account), ":now": s(ts(now))},
        )
        due: list[tuple[ImportRecord, bool]] = []
        async for item in query:
            due.append((record_from_item(item), "result_look" in item))
            if len(due) >= limit:
                break
        return due

    async def results(self) -> dict[tuple[str, int], dict[str, Any]]:
        scan = self.db.pages(
            "Scan", FilterExpression="kind = :k", ExpressionAttributeValues={":k": s("result")}
        )
        return {
            (i["account"]["S"], int(i["sis_batch_id"]["N"])): json.loads(i["summary"]["S"])
            async for i in scan
        }

    def _index(self, name: str, attribute: str) -> AsyncIterator[Item]:
        return self.db.pages(
            "Query",
            IndexName=name,
            KeyConditionExpression=f"{attribute} = :p",
            ExpressionAttributeValues={":p": s(PRESENT)},
        )

    async def stuck(self) -> dict[tuple[str, int], StuckVerdict]:
        query = self.db.pages(
            "Query",
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": w.STUCK},
            ConsistentRead=True,
        )
        return {
            (i["account"]["S"], int(i["sis_batch_id"]["N"])): StuckVerdict(
                StuckReason(i["reason"]["S"]), datetime.fromisoformat(i["since"]["S"])
            )
            async for i in query
        }
