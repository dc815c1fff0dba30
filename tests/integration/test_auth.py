"""Bearer tokens against the real database: one read authenticates, older tokens still work,
revoked ones never do."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User, create_user_token, hash_token, revoke_token, user_for_token
from shared.mongo import COLLECTIONS, Document


async def test_a_new_token_carries_its_user_and_authenticates(db: AsyncDatabase[Document]) -> None:
    user, token = await create_user_token(db, "ana")
    stored = await db[COLLECTIONS.tokens].find_one({"_id": hash_token(token)})
    assert stored is not None and stored["user_name"] == "ana" and token not in str(stored)
    # The users collection is not needed to authenticate it any more.
    await db[COLLECTIONS.users].delete_many({})
    assert await user_for_token(db, token) == User(user.id, "ana")


async def test_a_token_issued_before_user_name_was_stored_still_authenticates(db: AsyncDatabase[Document]) -> None:
    await db[COLLECTIONS.users].insert_one({"_id": 41, "name": "old", "created_at": datetime.now(UTC)})
    await db[COLLECTIONS.tokens].insert_one(
        {"_id": hash_token("sw_legacy"), "user_id": 41, "created_at": datetime.now(UTC), "revoked_at": None}
    )
    assert await user_for_token(db, "sw_legacy") == User(41, "old")


async def test_revoked_and_unknown_tokens_authenticate_nobody(db: AsyncDatabase[Document]) -> None:
    _, token = await create_user_token(db, "bea")
    assert await revoke_token(db, token)
    assert await user_for_token(db, token) is None
    assert await user_for_token(db, "sw_never_issued") is None


async def test_concurrent_first_tokens_of_one_name_make_one_user(db: AsyncDatabase[Document]) -> None:
    # What three parallel `tokens create dora` do on a fresh database.
    issued = await asyncio.gather(*(create_user_token(db, "dora") for _ in range(6)))
    assert len({user.id for user, _ in issued}) == 1
    assert await db[COLLECTIONS.users].count_documents({"name": "dora"}) == 1
    for user, token in issued:
        assert await user_for_token(db, token) == user
    # A later token of the same name is the same user again.
    again, _ = await create_user_token(db, "dora")
    assert again == issued[0][0]
