"""The verified-token cache against the real database: a cached token authenticates with no read,
a revocation made through another client (another replica, the CLI) is refused at once, and
nothing is remembered while the tokens collection is not watched."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User, create_user_token, hash_token, revoke_token, user_for_token_hash
from services.gateway.token_cache import VerifiedTokens
from shared.mongo import COLLECTIONS, Document, make_client
from shared.settings import Settings


class CountedReads:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.calls = 0

    def __call__(self, token_hash: str) -> Callable[[], Awaitable[User | None]]:
        async def read() -> User | None:
            self.calls += 1
            return await user_for_token_hash(self.db, token_hash)

        return read


async def _until(condition: Callable[[], bool], seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


async def test_a_revocation_by_another_client_is_refused_at_once(
    db: AsyncDatabase[Document], settings: Settings
) -> None:
    cache = VerifiedTokens()
    watching = asyncio.create_task(cache.watch(db))
    other = make_client(settings)  # another replica / the CLI: its own connection
    try:
        await _until(lambda: cache.live)
        user, token = await create_user_token(db, "ana")
        h = hash_token(token)
        reads = CountedReads(db)
        assert await cache.lookup(h, reads(h)) == user
        assert await cache.lookup(h, reads(h)) == user
        assert reads.calls == 1  # the second request paid no round trip

        assert await revoke_token(other[settings.mongo_db], token)
        await _until(lambda: cache.get(h) is None, seconds=2.0)
        assert await cache.lookup(h, reads(h)) is None
        assert reads.calls == 2
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)
        await other.close()
    assert cache.live is False


async def test_a_deleted_token_document_is_forgotten(db: AsyncDatabase[Document]) -> None:
    cache = VerifiedTokens()
    watching = asyncio.create_task(cache.watch(db))
    try:
        await _until(lambda: cache.live)
        user, token = await create_user_token(db, "bo")
        h = hash_token(token)
        assert await cache.lookup(h, CountedReads(db)(h)) == user
        await db[COLLECTIONS.tokens].delete_one({"_id": h})
        await _until(lambda: cache.get(h) is None, seconds=2.0)
        assert await cache.lookup(h, CountedReads(db)(h)) is None
    finally:
        watching.cancel()
        await asyncio.gather(watching, return_exceptions=True)


async def test_nothing_is_remembered_without_the_watch(db: AsyncDatabase[Document]) -> None:
    cache = VerifiedTokens()  # watch never started
    user, token = await create_user_token(db, "cy")
    h = hash_token(token)
    reads = CountedReads(db)
    for _ in range(3):
        assert await cache.lookup(h, reads(h)) == user
    assert reads.calls == 3
