"""Read coalescing: concurrent identical reads share one database round trip.

Fifty dashboards polling the same campaign ask the database the same three questions (whose token
is this, what is this report, what are its sources) many times a millisecond. A read joins the
identical one already in flight instead of issuing its own; nothing is kept once it completes, so
no answer is older than the request that receives it — this is not a cache.

Read-your-writes: a request that wrote (any method but GET/HEAD, except the POSTs that only read)
starts a new epoch when it answers, so a read issued after that answer never joins one that began
before the write.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from functools import partial
from typing import Any, TypeVar

from shared.metrics import READS_COALESCED
from shared.service import ASGIApp, Receive, Scope, Send

T = TypeVar("T")

# POST routes that only read (their body is a query), by route template.
READ_ONLY_POSTS = frozenset({"/sales/analytic/report"})


class ReadCoalescer:
    def __init__(self) -> None:
        self._in_flight: dict[tuple[int, Hashable], asyncio.Future[Any]] = {}
        self.epoch = 0
        self.joined = 0  # reads answered by another request's round trip (for tests and the bench)

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[T]]) -> T:
        """`fetch()`'s result, shared with every identical read issued while it runs."""
        slot = (self.epoch, key)
        shared = self._in_flight.get(slot)
        if shared is None:
            shared = asyncio.ensure_future(fetch())
            self._in_flight[slot] = shared
            shared.add_done_callback(partial(self._finished, slot))
        else:
            self.joined += 1
            READS_COALESCED.inc()
        # Shielded: one client hanging up must not cancel the read the others wait on.
        result: T = await asyncio.shield(shared)
        return result

    def new_epoch(self) -> None:
        self.epoch += 1

    def _finished(self, slot: tuple[int, Hashable], done: asyncio.Future[Any]) -> None:
        if self._in_flight.get(slot) is done:
            del self._in_flight[slot]
        if not done.cancelled():
            done.exception()  # retrieved here, so a failure nobody waits for any more is not logged as lost


class WritesEndEpochMiddleware:
    """Starts a new coalescing epoch as each writing request's response begins (its write is done)."""

    def __init__(self, app: ASGIApp, reads: ReadCoalescer) -> None:
        self.app = app
        self.reads = reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return

        async def send_after_write(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None)
                if route not in READ_ONLY_POSTS:
                    self.reads.new_epoch()
            await send(message)

        await self.app(scope, receive, send_after_write)
