"""The verified-token cache's rules, without a database: only positive answers, only while
watched, never an answer read before a change event, bounded in age and size."""

from __future__ import annotations

import time

import pytest

from services.gateway.auth import User
from services.gateway.token_cache import VerifiedTokens

ANA = User(1, "ana")


def watched(ttl: float = 30.0, max_entries: int = 100) -> VerifiedTokens:
    cache = VerifiedTokens(ttl, max_entries)
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


def test_entries_expire_and_the_oldest_go_first(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = watched(ttl=5.0, max_entries=2)
    now = time.monotonic()
    monkeypatch.setattr("services.gateway.token_cache.time.monotonic", lambda: now)
    for key in ("a", "b", "c"):
        cache.put(key, ANA, cache.generation)
    assert cache.get("a") is None  # pushed out by the size bound
    assert cache.get("c") == ANA
    monkeypatch.setattr("services.gateway.token_cache.time.monotonic", lambda: now + 5.0)
    assert cache.get("c") is None


def test_entries_remembered_together_expire_apart_and_never_past_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    cache = watched(ttl=30.0, max_entries=1_000)
    now = time.monotonic()
    monkeypatch.setattr("services.gateway.token_cache.time.monotonic", lambda: now)
    keys = [f"t{n}" for n in range(500)]
    for key in keys:
        cache.put(key, ANA, cache.generation)

    def alive(at: float) -> int:
        monkeypatch.setattr("services.gateway.token_cache.time.monotonic", lambda: now + at)
        return sum(cache.get(key) is not None for key in keys)

    assert alive(30.0 * 0.75 - 0.01) == 500  # none before 75 % of the bound
    assert 100 < alive(30.0 * 0.875) < 400  # about half by the middle of the spread
    assert alive(30.0) == 0  # none past the bound
