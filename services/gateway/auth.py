"""Bearer tokens: random secrets handed out once, stored only as SHA-256 hashes."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.mongo import COLLECTIONS, Document

TOKEN_PREFIX = "sw_"  # noqa: S105 - a visible prefix, not a secret


@dataclass(frozen=True)
class User:
    id: int
    name: str


def hash_token(token: str) -> str:
    # Tokens are 256-bit random values, so a fast unsalted hash is enough (no dictionary to attack).
    return hashlib.sha256(token.encode()).hexdigest()


async def create_user_token(db: AsyncDatabase[Document], name: str) -> tuple[User, str]:
    """Create (or reuse, by name) a user and issue a new token for it. Returns the plaintext once."""
    user_id = await _user_id_for(db, name)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    # The user's name rides on the token (names never change), so authenticating is one read.
    await db[COLLECTIONS.tokens].insert_one(
        {
            "_id": hash_token(token),
            "user_id": user_id,
            "user_name": name,
            "created_at": datetime.now(UTC),
            "revoked_at": None,
        }
    )
    return User(user_id, name), token


async def _user_id_for(db: AsyncDatabase[Document], name: str) -> int:
    """The id of the user called `name`, made on first use. Concurrent first uses agree on one
    user: the name is claimed in `user_names` (unique by `_id`), and the loser reads the winner's."""
    existing = await db[COLLECTIONS.users].find_one({"name": name})  # users made before the claims
    if existing is not None:
        return int(existing["_id"])
    counter = await _upsert(db["counters"], {"_id": "users"}, {"$inc": {"seq": 1}})
    claim = await _upsert(db[COLLECTIONS.user_names], {"_id": name}, {"$setOnInsert": {"user_id": int(counter["seq"])}})
    user_id = int(claim["user_id"])
    await db[COLLECTIONS.users].update_one(
        {"_id": user_id}, {"$setOnInsert": {"name": name, "created_at": datetime.now(UTC)}}, upsert=True
    )
    return user_id


async def _upsert(collection: AsyncCollection[Document], key: Document, update: Document) -> Document:
    """The document after an upsert by `_id`. Of two first upserts of one `_id` at once, one may
    fail on the duplicate key (MongoDB), or come back with no document (SecantusDB): the first
    `tokens create` runs on a fresh database, started in parallel, did both. Such a loser runs
    again, and then finds the document the winner made."""
    for _ in range(5):
        try:
            found = await collection.find_one_and_update(key, update, upsert=True, return_document=ReturnDocument.AFTER)
        except DuplicateKeyError:
            found = None
        if found is not None:
            return found
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the upsert of {key} in {collection.name} kept losing to another")


async def revoke_token(db: AsyncDatabase[Document], token: str) -> bool:
    result = await db[COLLECTIONS.tokens].update_one(
        {"_id": hash_token(token)}, {"$set": {"revoked_at": datetime.now(UTC)}}
    )
    return result.matched_count == 1


async def user_for_token(db: AsyncDatabase[Document], token: str) -> User | None:
    return await user_for_token_hash(db, hash_token(token))


async def user_for_token_hash(db: AsyncDatabase[Document], token_hash: str) -> User | None:
    # By `_id` alone, the revocation checked here: SecantusDB plans a find naming another field
    # beside `_id` as a scan, at twice the CPU (services/gateway/reports.py, `by_ids`).
    record = await db[COLLECTIONS.tokens].find_one({"_id": token_hash})
    if record is None or record.get("revoked_at") is not None:
        return None
    if record.get("user_name") is not None:
        return User(int(record["user_id"]), str(record["user_name"]))
    user = await db[COLLECTIONS.users].find_one({"_id": record["user_id"]})  # a token issued before user_name
    if user is None:
        return None
    return User(int(user["_id"]), str(user["name"]))
