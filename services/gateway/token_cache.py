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

Refresh ahead: a request that finds its entry in the last quarter of its life is answered from it
and starts a new read of the token in the background, so a user who keeps making requests never
waits for their token's read; the entry is replaced (or, if the token is gone, dropped) when that
read returns. No entry is ever used past its expiry.
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
# A request that finds its entry past this share of the entry's life reads the token again in
# the background (refresh ahead): every request of an active user used to wait for that read once
# per life of the entry, one database round trip more on its path.
TOKEN_REFRESH_AFTER = 0.75
TOKEN_CACHE_ENTRIES = 10_000
RETRY_WATCH_SECONDS = 1.0


class VerifiedTokens:
    def __init__(
        self,
        ttl: float = TOKEN_CACHE_SECONDS,
        max_entries: int = TOKEN_CACHE_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        # token hash -> (user, refresh after, expires), monotonic times
        self._entries: OrderedDict[str, tuple[User, float, float]] = OrderedDict()
        self.live = False  # True only while the change stream is open
        self.generation = 0  # bumped by every change event and every (re)start of the watch
        self._refreshing: dict[str, asyncio.Task[None]] = {}

    def get(self, token_hash: str) -> User | None:
        found = self._entry(token_hash)
        return None if found is None else found[0]

    def _entry(self, token_hash: str) -> tuple[User, float, float] | None:
        if not self.live:
            return None
        found = self._entries.get(token_hash)
        if found is None:
            return None
        if self.clock() >= found[2]:
            del self._entries[token_hash]
            return None
        return found

    def put(self, token_hash: str, user: User, generation: int) -> None:
        """Remember a lookup that began at `generation` (unless a change came in since)."""
        if not self.live or generation != self.generation:
            return
        now = self.clock()
        life = self.ttl * (1 - TOKEN_CACHE_SPREAD * random.random())
        self._entries[token_hash] = (user, now + life * TOKEN_REFRESH_AFTER, now + life)
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
        for task in self._refreshing.values():
            task.cancel()  # what they would store is older than what stops being trusted now
        self._refreshing.clear()

    async def lookup(self, token_hash: str, read: Callable[[], Awaitable[User | None]]) -> User | None:
        found = self._entry(token_hash)
        if found is not None:
            remembered, refresh_after, _ = found
            if self.clock() >= refresh_after and token_hash not in self._refreshing:
                self._refreshing[token_hash] = asyncio.create_task(self._refresh(token_hash, read))
            return remembered
        generation = self.generation
        user = await read()
        if user is not None:
            self.put(token_hash, user, generation)
        return user

    async def _refresh(self, token_hash: str, read: Callable[[], Awaitable[User | None]]) -> None:
        """Read a remembered token again and store the answer (or forget the token if it is gone)."""
        generation = self.generation
        try:
            user = await read()
        except Exception as exc:  # no request waits on this task: its failure is logged here or nowhere
            # The entry stays until it expires; a request after that reads the token itself.
            log.warning("could not refresh a cached token: %r", exc)
            return
        finally:
            if self._refreshing.get(token_hash) is asyncio.current_task():
                del self._refreshing[token_hash]
        if user is None:
            self._entries.pop(token_hash, None)
        else:
            self.put(token_hash, user, generation)

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
