"""The verified-token cache's rules, without a database: only positive answers, only while
watched, never an answer read before a change event, bounded in age and size."""

from __future__ import annotations

import asyncio

import pytest

from services.gateway.auth import User
from services.gateway.token_cache import VerifiedTokens

ANA = User(1, "ana")


class Clock:
    """The cache's clock, moved by hand (the event loop keeps the real one)."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def watched(ttl: float = 30.0, max_entries: int = 100, clock: Clock | None = None) -> VerifiedTokens:
    cache = VerifiedTokens(ttl, max_entries, clock or Clock())
    cache.live = True
    return cache


async def test_a_miss_is_never_remembered() -> None:
    cache, calls = watched(), []

    async def read() -> User | None:
        calls.append(1)
        return None

    assert await cache.lookup("h", read) is None
    assert await cache.lookup("h", read) is None
    assert len(calls) == 2


async def test_a_lookup_that_straddles_a_change_is_not_stored() -> None:
    cache = watched()

    async def read_then_change() -> User | None:
        cache.changed("other-token")  # an event arrives while this read is in flight
        return ANA

    assert await cache.lookup("h", read_then_change) == ANA
    assert cache.get("h") is None


def test_a_change_event_forgets_its_token_only() -> None:
    cache = watched()
    cache.put("a", ANA, cache.generation)
    cache.put("b", ANA, cache.generation)
    cache.changed("a")
    assert cache.get("a") is None
    assert cache.get("b") == ANA


def test_losing_the_watch_forgets_everything() -> None:
    cache = watched()
    cache.put("a", ANA, cache.generation)
    cache.stop_trusting()
    cache.live = True  # even once watched again, the old entries are gone
    assert cache.get("a") is None


def test_entries_expire_and_the_oldest_go_first() -> None:
    clock = Clock()
    cache = watched(ttl=5.0, max_entries=2, clock=clock)
    for key in ("a", "b", "c"):
        cache.put(key, ANA, cache.generation)
    assert cache.get("a") is None  # pushed out by the size bound
    assert cache.get("c") == ANA
    clock.now += 5.0
    assert cache.get("c") is None


def test_entries_remembered_together_expire_apart_and_never_past_the_bound() -> None:
    clock = Clock()
    cache = watched(ttl=30.0, max_entries=1_000, clock=clock)
    now = clock.now
    keys = [f"t{n}" for n in range(500)]
    for key in keys:
        cache.put(key, ANA, cache.generation)

    def alive(at: float) -> int:
        clock.now = now + at
        return sum(cache.get(key) is not None for key in keys)

    assert alive(30.0 * 0.75 - 0.01) == 500  # none before 75 % of the bound
    assert 100 < alive(30.0 * 0.875) < 400  # about half by the middle of the spread
    assert alive(30.0) == 0  # none past the bound


def late_in_life(cache: VerifiedTokens, clock: Clock, token_hash: str) -> None:
    """Move the clock just past the entry's refresh point (its life is drawn at random)."""
    _, refresh_after, expires = cache._entries[token_hash]
    assert refresh_after < expires
    clock.now = refresh_after + (expires - refresh_after) / 10


class SlowRead:
    """A token read that returns `answer` once released, counting its calls."""

    def __init__(self, answer: User | None) -> None:
        self.answer = answer
        self.calls = 0
        self.release = asyncio.Event()

    async def __call__(self) -> User | None:
        self.calls += 1
        await self.release.wait()
        return self.answer


async def test_an_entry_late_in_its_life_answers_at_once_and_is_read_again_behind() -> None:
    clock = Clock()
    cache = watched(ttl=30.0, clock=clock)
    now = clock.now
    cache.put("h", ANA, cache.generation)
    fresh = User(1, "ana renamed")
    read = SlowRead(fresh)
    assert await cache.lookup("h", read) == ANA and read.calls == 0  # early in its life: no read
    late_in_life(cache, clock, "h")
    for _ in range(5):  # past the refresh point: answered from the cache while one read runs
        assert await asyncio.wait_for(cache.lookup("h", read), 1) == ANA
    await asyncio.sleep(0)
    assert read.calls == 1
    read.release.set()
    await asyncio.sleep(0.01)
    assert cache.get("h") == fresh  # replaced by the new read, with a new life
    clock.now = now + 30.0
    assert cache.get("h") == fresh  # the first entry expired by now, at the latest


async def test_a_refresh_that_finds_the_token_gone_forgets_it() -> None:
    clock = Clock()
    cache = watched(ttl=30.0, clock=clock)
    cache.put("h", ANA, cache.generation)
    late_in_life(cache, clock, "h")
    gone = SlowRead(None)
    gone.release.set()
    assert await cache.lookup("h", gone) == ANA
    await asyncio.sleep(0.01)
    assert gone.calls == 1 and cache.get("h") is None


async def test_a_refresh_never_stores_what_a_change_or_a_lost_watch_made_old() -> None:
    clock = Clock()
    cache = watched(ttl=30.0, clock=clock)
    cache.put("h", ANA, cache.generation)
    late_in_life(cache, clock, "h")
    straddling = SlowRead(ANA)
    assert await cache.lookup("h", straddling) == ANA
    await asyncio.sleep(0)
    cache.changed("h")  # the token's document changed while the refresh was reading it
    straddling.release.set()
    await asyncio.sleep(0.01)
    assert cache.get("h") is None

    cache.put("h", ANA, cache.generation)
    late_in_life(cache, clock, "h")
    hanging = SlowRead(ANA)
    assert await cache.lookup("h", hanging) == ANA
    await asyncio.sleep(0)
    cache.stop_trusting()  # the watch is lost: the refresh in flight is cancelled
    await asyncio.sleep(0.01)
    cache.live = True
    hanging.release.set()
    await asyncio.sleep(0.01)
    assert cache.get("h") is None and hanging.calls == 1


async def test_a_failed_refresh_leaves_the_entry_until_it_expires(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    cache = watched(ttl=30.0, clock=clock)
    now = clock.now
    cache.put("h", ANA, cache.generation)
    late_in_life(cache, clock, "h")

    async def failing() -> User | None:
        raise ConnectionError("database down")

    assert await cache.lookup("h", failing) == ANA
    await asyncio.sleep(0.01)
    assert cache.get("h") == ANA
    assert "could not refresh a cached token" in caplog.text
    clock.now = now + 30.0
    assert cache.get("h") is None  # expired: the failed refresh did not extend it
