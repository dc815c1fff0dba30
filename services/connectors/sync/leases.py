"""Leases: at most one replica works on a connection at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import COLLECTIONS, Document


def now() -> datetime:
    return datetime.now(UTC)


class Leases:
    """At most one holder per key until `expires_at`; the holder renews, a dead holder's lease lapses.

    Acquisition is a single upsert guarded by "mine or expired": if someone else holds a live
    lease the filter matches nothing, the upsert tries to insert the same `_id` and the unique
    `_id` index refuses — on any MongoDB, replica set or sharded.
    """

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.coll = db[COLLECTIONS.leases]

    async def acquire(self, key: str, owner: str, ttl: float) -> bool:
        moment = now()
        try:
            await self.coll.update_one(
                {"_id": key, "$or": [{"owner": owner}, {"expires_at": {"$lt": moment}}]},
                {"$set": {"owner": owner, "expires_at": moment + timedelta(seconds=ttl), "acquired_at": moment}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def renew(self, key: str, owner: str, ttl: float) -> bool:
        result = await self.coll.update_one(
            {"_id": key, "owner": owner}, {"$set": {"expires_at": now() + timedelta(seconds=ttl)}}
        )
        return result.matched_count == 1

    async def release(self, key: str, owner: str) -> None:
        await self.coll.delete_one({"_id": key, "owner": owner})
