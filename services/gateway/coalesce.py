"""Read coalescing: concurrent identical reads share one database round trip.

Fifty dashboards polling the same campaign ask the database the same three questions (whose token
is this, what is this report, what are its sources) many times a millisecond. A read joins the
identical one already in flight instead of issuing its own; nothing is kept once it completes, so
no answer is older than the request that receives it — this is not a cache.

It works at two levels. Whole requests: identical concurrent read requests (same route, query,
body and bearer token) share one run of the app and each gets a copy of its answer, so the 49
joiners skip routing, validation, auth and serialization altogether. Database reads inside a run:
different requests of one user still share the token lookup and the report they both need.

Read-your-writes: a request that wrote (any method but GET/HEAD, except the POSTs that only read)
starts a new epoch when it answers, so a read issued after that answer never joins one that began
before the write.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Hashable, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from prometheus_client import Counter

from services.gateway.telemetry import READS_COALESCED, REQUESTS_COALESCED
from shared.service import ASGIApp, Receive, Scope, Send

T = TypeVar("T")

# POST routes that only read (their body is a query), by route template.
READ_ONLY_POSTS = frozenset({"/sales/analytic/report"})
# Requests shared whole: the read routes dashboards poll (report list, full report, page of sale
# rows), matched on the raw path before routing. Never exports: those stream files too large to copy.
SHARED_READ_PATHS = re.compile(r"^/sales/analytic(?:/report|/-?\d+/[^/]+/sales)?$")
# The request headers the shared routes read; the others (user agent, correlation id) cannot change the answer.
KEY_HEADERS = frozenset({b"authorization", b"content-type"})
MAX_SHARED_BODY = 16 * 1024  # a read's body is a small JSON query; anything larger runs on its own

Message = MutableMapping[str, Any]


class ReadCoalescer:
    def __init__(self) -> None:
        self._in_flight: dict[tuple[int, Hashable], asyncio.Future[Any]] = {}
        self.epoch = 0
        self.joined = 0  # reads answered by another request's round trip (for tests and the bench)

    async def read(self, key: Hashable, fetch: Callable[[], Awaitable[T]], joins: Counter = READS_COALESCED) -> T:
        """`fetch()`'s result, shared with every identical read issued while it runs (`joins`
        counts the reads that got it without running their own)."""
        while True:
            slot = (self.epoch, key)
            shared = self._in_flight.get(slot)
            if shared is None:
                return await self._lead(slot, fetch)
            self.joined += 1
            joins.inc()
            try:
                # Shielded: one joiner hanging up must not cancel the answer the others wait on.
                result: T = await asyncio.shield(shared)
                return result
            except _LeaderLeft:
                continue  # the request running it was cancelled: run (or join) a fresh one

    async def _lead(self, slot: tuple[int, Hashable], fetch: Callable[[], Awaitable[T]]) -> T:
        # The first reader runs the fetch in its own task and hands the result to the others
        # through a future: no task of its own per read (most reads are never joined, and a task
        # and a shield per read were a measurable share of a request's CPU).
        shared: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = shared
        try:
            result = await fetch()
        except asyncio.CancelledError:
            shared.set_exception(_LeaderLeft())
            raise
        except BaseException as exc:
            shared.set_exception(exc)
            raise
        else:
            shared.set_result(result)
            return result
        finally:
            if self._in_flight.get(slot) is shared:
                del self._in_flight[slot]
            if shared.done() and not shared.cancelled():
                shared.exception()  # retrieved here, so a failure nobody joined is not logged as lost

    def new_epoch(self) -> None:
        self.epoch += 1


class _LeaderLeft(Exception):
    """The request running a shared read was cancelled before it finished."""


@dataclass(frozen=True)
class SharedAnswer:
    """A run of the app for one request, recorded so that identical requests can replay it."""

    messages: list[Message]
    route: Any  # the route the router matched, for the per-route metrics of every sharer


class ReadCoalescingMiddleware:
    """The HTTP face of the ReadCoalescer: writes end the epoch as they answer, and identical read
    requests in flight share one run of the app."""

    def __init__(self, app: ASGIApp, reads: ReadCoalescer) -> None:
        self.app = app
        self.reads = reads

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method")
        if (method in ("GET", "HEAD") or scope["path"] in READ_ONLY_POSTS) and SHARED_READ_PATHS.match(scope["path"]):
            await self._shared(scope, receive, send)
        elif method in ("GET", "HEAD"):
            await self.app(scope, receive, send)
        else:
            await self.app(scope, receive, self._ending_epoch(scope, send))

    def _ending_epoch(self, scope: Scope, send: Send) -> Send:
        async def send_after_write(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None)
                if route not in READ_ONLY_POSTS:
                    self.reads.new_epoch()
            await send(message)

        return send_after_write

    async def _shared(self, scope: Scope, receive: Receive, send: Send) -> None:
        body, read = await _read_body(receive)
        if body is None:  # too large or the client left: not a query to share
            await self.app(scope, _replaying(read, receive), send)
            return
        key = (
            "request",
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            # Who asks is part of the question: answers are never shared across tokens. Every
            # occurrence, in order: a request sending two Authorization headers must not share
            # with one that sends only the header the app would not read.
            tuple((k, v) for k, v in scope.get("headers") or () if k in KEY_HEADERS),
            body,
        )
        answer = await self.reads.read(key, partial(self._run, scope, body, receive), REQUESTS_COALESCED)
        if answer.route is not None:
            scope["route"] = answer.route
        for message in answer.messages:
            await send(dict(message))  # a copy: outer middleware adds its own headers to each

    async def _run(self, scope: Scope, body: bytes, receive: Receive) -> SharedAnswer:
        messages: list[Message] = []
        sent_body = False

        async def receive_body() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        async def record(message: Message) -> None:
            messages.append(message)

        await self.app(scope, receive_body, record)
        return SharedAnswer(messages, scope.get("route"))


async def _read_body(receive: Receive) -> tuple[bytes | None, list[Message]]:
    """The request body, whole, when it is small; else None and the messages read so far."""
    read: list[Message] = []
    size = 0
    while True:
        message = await receive()
        read.append(message)
        if message["type"] != "http.request":
            return None, read
        size += len(message.get("body", b""))
        if size > MAX_SHARED_BODY:
            return None, read
        if not message.get("more_body", False):
            return b"".join(m.get("body", b"") for m in read), read


def _replaying(read: list[Message], receive: Receive) -> Receive:
    pending = list(read)

    async def replay() -> Message:
        return pending.pop(0) if pending else await receive()

    return replay
