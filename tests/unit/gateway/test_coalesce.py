"""Read coalescing: identical reads in flight share one fetch; nothing outlives the fetch; a write's
answer starts a new epoch that later reads never share with earlier ones."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from typing import Any

import pytest

from services.gateway.coalesce import ReadCoalescer, WritesEndEpochMiddleware


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

    await WritesEndEpochMiddleware(answer, reads)({"type": "http", "method": method, "path": path}, receive, send)
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
