"""Read coalescing: identical reads in flight share one fetch; nothing outlives the fetch; a write's
answer starts a new epoch that later reads never share with earlier ones."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from services.gateway.coalesce import ReadCoalescer, ReadCoalescingMiddleware


class CountingFetch:
    """A read that takes until released, counting how often it really ran."""

    def __init__(self, result: object = "answer") -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.result = result

    async def __call__(self) -> object:
        self.calls += 1
        await self.release.wait()
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_concurrent_identical_reads_share_one_fetch() -> None:
    reads, fetch = ReadCoalescer(), CountingFetch()
    waiters = [asyncio.ensure_future(reads.read(("report", 1, "r"), fetch)) for _ in range(20)]
    await asyncio.sleep(0)
    fetch.release.set()
    assert await asyncio.gather(*waiters) == ["answer"] * 20
    assert fetch.calls == 1
    assert reads.joined == 19


async def test_nothing_is_kept_once_the_read_completes() -> None:
    reads, fetch = ReadCoalescer(), CountingFetch()
    fetch.release.set()
    assert await reads.read("k", fetch) == "answer"
    fetch.result = "newer"
    assert await reads.read("k", fetch) == "newer"
    assert fetch.calls == 2
    assert reads.joined == 0


async def test_different_keys_never_share() -> None:
    reads = ReadCoalescer()
    first, second = CountingFetch("a"), CountingFetch("b")
    a = asyncio.ensure_future(reads.read(("report", 1, "r"), first))
    b = asyncio.ensure_future(reads.read(("report", 2, "r"), second))  # same report id, another user
    await asyncio.sleep(0)
    first.release.set()
    second.release.set()
    assert list(await asyncio.gather(a, b)) == ["a", "b"]
    assert (first.calls, second.calls) == (1, 1)


async def test_a_read_after_a_new_epoch_does_not_join_one_begun_before() -> None:
    reads = ReadCoalescer()
    before, after = CountingFetch("before the write"), CountingFetch("after the write")
    early = asyncio.ensure_future(reads.read("k", before))
    await asyncio.sleep(0)
    reads.new_epoch()  # a write answered meanwhile
    late = asyncio.ensure_future(reads.read("k", after))
    await asyncio.sleep(0)
    before.release.set()
    after.release.set()
    assert await early == "before the write"
    assert await late == "after the write"
    assert (before.calls, after.calls) == (1, 1)


async def test_one_waiter_hanging_up_does_not_cancel_the_others() -> None:
    reads, fetch = ReadCoalescer(), CountingFetch()
    leaver = asyncio.ensure_future(reads.read("k", fetch))
    stayer = asyncio.ensure_future(reads.read("k", fetch))
    await asyncio.sleep(0)
    leaver.cancel()
    await asyncio.sleep(0)
    fetch.release.set()
    assert await stayer == "answer"
    assert leaver.cancelled()


async def test_a_failed_read_fails_every_waiter_and_is_not_remembered() -> None:
    reads, failing = ReadCoalescer(), CountingFetch(ConnectionError("database down"))
    waiters = [asyncio.ensure_future(reads.read("k", failing)) for _ in range(3)]
    await asyncio.sleep(0)
    failing.release.set()
    outcomes = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    healthy = CountingFetch("recovered")
    healthy.release.set()
    assert await reads.read("k", healthy) == "recovered"


class Route:
    def __init__(self, path: str) -> None:
        self.path = path


async def answer(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = Route(scope["path"])  # what the router sets once it matched
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def respond(reads: ReadCoalescer, method: str, path: str) -> int:
    """The epoch seen by the response's first message: a write must have moved it by then."""
    seen: list[int] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            seen.append(reads.epoch)

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": b""}

    await ReadCoalescingMiddleware(answer, reads)({"type": "http", "method": method, "path": path}, receive, send)
    return seen[0]


@pytest.mark.parametrize(
    ("method", "path", "writes"),
    [
        ("GET", "/sales/analytic", False),
        ("HEAD", "/sales/analytic", False),
        ("POST", "/sales/analytic/report", False),  # a read whose query is its body
        ("POST", "/sales/create", True),
        ("POST", "/connections/{connection_id}/sources", True),
        ("PATCH", "/connections/{connection_id}", True),
        ("DELETE", "/connections/{connection_id}", True),
    ],
)
async def test_writing_requests_start_a_new_epoch_before_they_answer(method: str, path: str, writes: bool) -> None:
    reads = ReadCoalescer()
    assert await respond(reads, method, path) == (1 if writes else 0)


class HeldApp:
    """An ASGI app that answers with what it was asked (path, query, body, token) once released,
    counting how many times it really ran."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        self.runs += 1
        scope["route"] = Route("/template")
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await self.release.wait()
        token = next((v for k, v in scope["headers"] if k == b"authorization"), b"")  # the first, as FastAPI reads it
        answer = b"|".join([scope["path"].encode(), scope["query_string"], body, token])
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": answer})


def request_scope(method: str, path: str, query: bytes = b"", token: bytes = b"Bearer a") -> dict[str, Any]:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": [(b"authorization", token), (b"content-type", b"application/json")],
    }


async def ask(
    middleware: ReadCoalescingMiddleware, scope: dict[str, Any], body: bytes = b"", chunk: int = 0
) -> tuple[list[MutableMapping[str, Any]], dict[str, Any]]:
    """Sends one request (its body in `chunk`-sized parts when chunk > 0); returns what the
    client received and the scope as the middleware left it."""
    parts = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk else [body]
    messages = [{"type": "http.request", "body": p, "more_body": i < len(parts) - 1} for i, p in enumerate(parts)]
    received: list[MutableMapping[str, Any]] = []

    async def receive() -> MutableMapping[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        received.append(message)
        if message["type"] == "http.response.start":
            # What the request-context middleware does to each response: must not leak to others.
            message["headers"] = [*message["headers"], (b"x-correlation-id", str(id(received)).encode())]

    await middleware(scope, receive, send)
    return received, scope


LISTING = "/sales/analytic/-1001234567890/src1/sales"


async def test_identical_read_requests_in_flight_share_one_run_of_the_app() -> None:
    app, reads = HeldApp(), ReadCoalescer()
    middleware = ReadCoalescingMiddleware(app, reads)
    asks = [asyncio.ensure_future(ask(middleware, request_scope("GET", LISTING, b"status=sale"))) for _ in range(20)]
    await asyncio.sleep(0.01)
    app.release.set()
    answers = await asyncio.gather(*asks)
    assert app.runs == 1
    assert reads.joined == 19
    bodies = {a[0][1]["body"] for a in answers}
    assert bodies == {f"{LISTING}|status=sale||Bearer a".encode()}
    # Every sharer got its own copy of the answer: one correlation id header each, its own value.
    ids = [[v for k, v in a[0][0]["headers"] if k == b"x-correlation-id"] for a in answers]
    assert all(len(i) == 1 for i in ids)
    assert len({i[0] for i in ids}) == 20
    # The route the leader's run matched is on every sharer's scope, for the per-route metrics.
    assert all(getattr(a[1].get("route"), "path", None) == "/template" for a in answers)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (request_scope("GET", LISTING, b"status=sale"), request_scope("GET", LISTING, b"status=lead")),
        (request_scope("GET", LISTING, b"status=sale"), request_scope("GET", LISTING, b"status=sale", b"Bearer b")),
        (
            request_scope("GET", "/sales/analytic", b"channel_id=1"),
            request_scope("HEAD", "/sales/analytic", b"channel_id=1"),
        ),
        (
            # The app reads the first Authorization header: "a" here, though the last one is "b".
            {
                **request_scope("GET", LISTING, b"status=sale"),
                "headers": [
                    (b"authorization", b"Bearer a"),
                    (b"authorization", b"Bearer b"),
                    (b"content-type", b"application/json"),
                ],
            },
            request_scope("GET", LISTING, b"status=sale", b"Bearer b"),
        ),
    ],
)
async def test_requests_that_differ_in_query_token_or_method_never_share(
    first: dict[str, Any], second: dict[str, Any]
) -> None:
    app = HeldApp()
    middleware = ReadCoalescingMiddleware(app, ReadCoalescer())
    a = asyncio.ensure_future(ask(middleware, first))
    b = asyncio.ensure_future(ask(middleware, second))
    await asyncio.sleep(0.01)
    app.release.set()
    (got_a, _), (got_b, _) = await asyncio.gather(a, b)
    assert app.runs == 2
    assert got_a[1]["body"].endswith(first["headers"][0][1])
    assert got_b[1]["body"].endswith(second["headers"][0][1])


async def test_report_reads_share_only_with_the_same_body() -> None:
    app = HeldApp()
    middleware = ReadCoalescingMiddleware(app, ReadCoalescer())
    bodies = [b'{"report_id": "r1"}', b'{"report_id": "r1"}', b'{"report_id": "r2"}']
    asks = [asyncio.ensure_future(ask(middleware, request_scope("POST", "/sales/analytic/report"), b)) for b in bodies]
    await asyncio.sleep(0.01)
    app.release.set()
    answers = await asyncio.gather(*asks)
    assert app.runs == 2
    assert [a[0][1]["body"].split(b"|")[2] for a in answers] == bodies


async def test_a_large_body_is_not_shared_and_reaches_the_app_whole() -> None:
    app = HeldApp()
    app.release.set()
    body = b"x" * 40_000
    middleware = ReadCoalescingMiddleware(app, ReadCoalescer())
    received, _ = await ask(middleware, request_scope("POST", "/sales/analytic/report"), body, chunk=7_000)
    assert received[1]["body"].split(b"|")[2] == body


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/sales/analytic/report/r1/export"),  # streams a file: never copied
        ("GET", "/connections"),
        ("POST", "/sales/create"),
    ],
)
async def test_other_routes_run_once_per_request(method: str, path: str) -> None:
    app = HeldApp()
    middleware = ReadCoalescingMiddleware(app, ReadCoalescer())
    asks = [asyncio.ensure_future(ask(middleware, request_scope(method, path))) for _ in range(3)]
    await asyncio.sleep(0.01)
    app.release.set()
    await asyncio.gather(*asks)
    assert app.runs == 3


async def test_a_read_request_after_a_write_answered_does_not_join_one_begun_before() -> None:
    app, reads = HeldApp(), ReadCoalescer()
    middleware = ReadCoalescingMiddleware(app, reads)
    early = asyncio.ensure_future(ask(middleware, request_scope("GET", LISTING, b"status=sale")))
    await asyncio.sleep(0.01)
    writer = ReadCoalescingMiddleware(answer, reads)
    await ask(writer, request_scope("POST", "/sales/create"))  # a write answered meanwhile
    late = asyncio.ensure_future(ask(middleware, request_scope("GET", LISTING, b"status=sale")))
    await asyncio.sleep(0.01)
    app.release.set()
    await asyncio.gather(early, late)
    assert app.runs == 2


async def test_a_read_runs_in_its_callers_task_and_a_cancelled_leader_hands_over() -> None:
    reads = ReadCoalescer()
    caller = asyncio.current_task()

    async def where() -> object:
        return asyncio.current_task()

    assert await reads.read("where", where) is caller  # no task of its own per read

    fetch = CountingFetch()
    leader = asyncio.ensure_future(reads.read("k", fetch))
    await asyncio.sleep(0)
    joiner = asyncio.ensure_future(reads.read("k", fetch))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    fetch.release.set()
    assert await joiner == "answer"  # ran its own fetch once the leader left
    assert fetch.calls == 2
    assert reads._in_flight == {}
