"""Leases in the DynamoDB table: the conditional writes behind `consumer.daemon.lease.Leadership`."""

from __future__ import annotations

from consumer.adapters.dynamodb_io import Conflict, Dynamo
from consumer.adapters.dynamodb_writes import Write, if_rvn, lease_key, put_lease
from consumer.ports import LeaseState


class DynamoLeases:
    def __init__(self, db: Dynamo) -> None:
        self._db = db

    async def read_lease(self, name: str) -> LeaseState | None:
        item = await self._db.get(lease_key(name))
        if item is None:
            return None
        return LeaseState(owner=item["owner"]["S"], rvn=item["rvn"]["S"], fence=int(item["fence"]["N"]))

    async def create_lease(self, name: str, state: LeaseState) -> bool:
        return await self._try(put_lease(name, state, None))

    async def replace_lease(self, name: str, state: LeaseState, expected_rvn: str) -> bool:
        return await self._try(put_lease(name, state, expected_rvn))

    async def delete_lease(self, name: str, expected_rvn: str) -> bool:
        return await self._try({"Delete": {"Key": lease_key(name), **if_rvn(expected_rvn)}})

    async def _try(self, write: Write) -> bool:
        try:
            await self._db.write([write])
        except Conflict:
            return False
        return True
