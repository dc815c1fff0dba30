"""Verified bearer tokens, remembered for a short while so that a request does not pay a database
round trip to authenticate, and forgotten as soon as their stored document changes.

Correct across replicas: every gateway replica watches the `tokens` collection (a change stream)
and drops a token the moment its document is updated, replaced or deleted (a revocation sets
`revoked_at`), so a revocation made anywhere (the CLI, another replica) reaches every replica
within one change event. The cache is used only while that watch is running: until the stream is
open, and whenever it fails, nothing is remembered and every request reads the database, as it did
before. Entries also expire after `ttl` seconds, a bound for the worst case (a watch that lags).

Only positive answers are kept: a token issued a moment ago is never refused because an earlier
lookup missed it. A lookup that began before a change event was seen is not stored (it may have
read the document the event replaced).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.gateway.auth import User
from shared.mongo import COLLECTIONS, Document

log = logging.getLogger(__name__)

TOKEN_CACHE_SECONDS = 30.0  # the longest a cached answer is trusted if the watch were to lag
# Each entry lives a random 75-100 % of that: tokens remembered together (every user's first
# request after a restart) then expire over several seconds instead of at once, when their reads
# queued behind each other in the database (the tail of bench.gateway_load every 30 s;
# docs/benchmarks.md, "Figures behind code comments").
TOKEN_CACHE_SPREAD = 0.25
TOKEN_CACHE_ENTRIES = 10_000
RETRY_WATCH_SECONDS = 1.0


class VerifiedTokens:
    def __init__(self, ttl: float = TOKEN_CACHE_SECONDS, max_entries: int = TOKEN_CACHE_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[User, float]] = OrderedDict()
        self.live = False  # True only while the change stream is open
        self.generation = 0  # bumped by every change event and every (re)start of the watch

    def get(self, token_hash: str) -> User | None:
        if not self.live:
            return None
        found = self._entries.get(token_hash)
        if found is None:
            return None
        user, expires = found
        if time.monotonic() >= expires:
            del self._entries[token_hash]
            return None
        return user

    def put(self, token_hash: str, user: User, generation: int) -> None:
        """Remember a lookup that began at `generation` (unless a change came in since)."""
        if not self.live or generation != self.generation:
            return
        self._entries[token_hash] = (user, time.monotonic() + self.ttl * (1 - TOKEN_CACHE_SPREAD * random.random()))
        self._entries.move_to_end(token_hash)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def changed(self, token_hash: object) -> None:
        self.generation += 1
        if isinstance(token_hash, str):
            self._entries.pop(token_hash, None)

    def stop_trusting(self) -> None:
        self.live = False
        self.generation += 1
        self._entries.clear()

    async def lookup(self, token_hash: str, read: Callable[[], Awaitable[User | None]]) -> User | None:
        cached = self.get(token_hash)
        if cached is not None:
            return cached
        generation = self.generation
        user = await read()
        if user is not None:
            self.put(token_hash, user, generation)
        return user

    async def watch(self, db: AsyncDatabase[Document]) -> None:
        """Runs for the life of the app: keeps the cache in step with the `tokens` collection."""
        pipeline: list[Document] = [{"$match": {"operationType": {"$in": ["update", "replace", "delete"]}}}]
        while True:
            try:
                async with await db[COLLECTIONS.tokens].watch(pipeline) as stream:
                    self.generation += 1
                    self.live = True
                    async for event in stream:
                        self.changed((event.get("documentKey") or {}).get("_id"))
            except asyncio.CancelledError:
                self.stop_trusting()
                raise
            except PyMongoError as exc:
                log.warning("token change stream unavailable, authenticating every request: %r", exc)
            finally:
                self.stop_trusting()
            await asyncio.sleep(RETRY_WATCH_SECONDS)
