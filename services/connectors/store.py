"""MongoDB side of the connectors: connections (credentials encrypted), leases, sync state, rows.

Credentials are encrypted with Fernet under `Settings.credentials_key` before they touch the
database and decrypted only in memory, right before a client is built. Nothing here logs them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from cryptography.fernet import Fernet, InvalidToken
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings

# Results of commands (check, SweetClub sale/refund add) the gateway waits for, by request id.
COMMAND_RESULTS = "connector_commands"


class CredentialsBox:
    def __init__(self, settings: Settings) -> None:
        self._fernet = Fernet(settings.credentials_key.get_secret_value().encode())

    def seal(self, credentials: dict[str, str]) -> str:
        return self._fernet.encrypt(json.dumps(credentials, sort_keys=True).encode()).decode()

    def open(self, sealed: str) -> dict[str, str]:
        try:
            return cast(dict[str, str], json.loads(self._fernet.decrypt(sealed.encode())))
        except InvalidToken as exc:
            raise ValueError("stored credentials cannot be decrypted with the configured key") from exc


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


async def upsert_rows(db: AsyncDatabase[Document], rows: list[dict[str, Any]]) -> int:
    """Replace-or-insert by `_id` (source report + external id): a re-read page changes the
    stored rows to their newest state and never adds a second copy."""
    if not rows:
        return 0
    await db[COLLECTIONS.sales].bulk_write([ReplaceOne({"_id": r["_id"]}, r, upsert=True) for r in rows], ordered=False)
    return len(rows)
