"""A platform session token kept on its connection, encrypted (`shared.credentials`), and
reused while it lives: SweetClub's session lasts 24 h and is renewed by use, so a run or a
command logs in only when there is no token, it has expired, or the platform refuses it (401).

The token is bound to the credentials it was obtained with: new credentials, no old token.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.sync.leases import now
from shared.credentials import CredentialsBox
from shared.mongo import COLLECTIONS, Document

LIFETIME = timedelta(hours=24)
# A token this close to its end is not used: a run that starts with it would see a 401 midway.
MARGIN = timedelta(minutes=10)


def fingerprint(credentials: dict[str, str]) -> str:
    joined = "\x00".join(f"{k}={credentials[k]}" for k in sorted(credentials))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]


class ConnectionSession:
    def __init__(
        self, db: AsyncDatabase[Document], box: CredentialsBox, conn: Document, credentials: dict[str, str]
    ) -> None:
        self._coll = db[COLLECTIONS.connections]
        self._box = box
        self._conn_id = conn["_id"]
        self._stored = conn.get("session")
        self._for = fingerprint(credentials)

    async def load(self) -> str | None:
        stored = self._stored
        if not isinstance(stored, dict) or not stored.get("token"):
            return None
        expires = stored.get("expires_at")
        if expires is None or expires - MARGIN <= now():
            return None
        try:
            opened = self._box.open(str(stored["token"]))
        except ValueError:
            return None
        return opened.get("token") if opened.get("for") == self._for else None

    async def save(self, token: str) -> None:
        moment = now()
        self._stored = {
            "token": self._box.seal({"token": token, "for": self._for}),
            "expires_at": moment + LIFETIME,
            "obtained_at": moment,
        }
        await self._coll.update_one({"_id": self._conn_id}, {"$set": {"session": self._stored}})

    async def used(self) -> None:
        if isinstance(self._stored, dict):
            await self._coll.update_one(
                {"_id": self._conn_id, "session.token": self._stored.get("token")},
                {"$set": {"session.expires_at": now() + LIFETIME}},
            )
