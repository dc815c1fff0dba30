"""The listing's read-ahead: pages in order at the cursors their predecessors gave, never more than
its depth ahead of the storer, grouped as they wait, an error raised after the pages before it,
and no fetch left running once the storer stops."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import date, timedelta

import pytest

from services.connectors.platforms.base.puller import Cursor, PulledPage, Quarantined
from services.connectors.sync.read_ahead import joined, later, read_ahead


class Listing:
    """`pages` pages; page n says day n and points at n + 1. Records the cursors it was asked."""

    def __init__(self, pages: int, *, fail_at: int | None = None) -> None:
        self.pages, self.fail_at = pages, fail_at
        self.asked: list[int] = []
        self.stored = 0  # set by the test's storer

    async def fetch(self, cursor: Cursor) -> PulledPage:
        n = cursor["page"]
        self.asked.append(n)
        await asyncio.sleep(0)
        if n == self.fail_at:
            raise RuntimeError(f"page {n} failed")
        following = None if n == self.pages else {"page": n + 1}
        return PulledPage([{"_id": f"s:{n}"}], following, date(2024, 1, 1) + timedelta(days=n - 1))


async def test_every_page_in_order_at_its_predecessor_s_cursor() -> None:
    listing = Listing(12)
    got: list[int] = []
    async with contextlib.aclosing(read_ahead(listing.fetch, {"page": 3})) as batches:
        async for pages in batches:
            got += [int(str(p.rows[0]["_id"])[2:]) for p in pages]
    assert got == list(range(3, 13)) and listing.asked == list(range(3, 13))


async def test_a_slow_storer_gets_the_waiting_pages_together_and_the_fetcher_stays_bounded() -> None:
    listing = Listing(40)
    groups: list[int] = []
    async with contextlib.aclosing(read_ahead(listing.fetch, {"page": 1}, depth=4)) as batches:
        async for pages in batches:
            # The fetcher may hold `depth` pages in the queue and one more in its hands.
            assert len(listing.asked) - listing.stored <= 4 + 1 + len(pages)
            await asyncio.sleep(0.01)  # storing is slower than fetching
            listing.stored += len(pages)
            groups.append(len(pages))
    assert sum(groups) == 40 and max(groups) > 1 and max(groups) <= 4


async def days_read(listing: Listing, got: list[int]) -> None:
    async with contextlib.aclosing(read_ahead(listing.fetch, {"page": 1})) as batches:
        async for pages in batches:
            got += [p.high_water.day for p in pages if p.high_water is not None]


async def store_failing(listing: Listing) -> None:
    async with contextlib.aclosing(read_ahead(listing.fetch, {"page": 1}, depth=2)) as batches:
        async for _ in batches:
            raise ValueError("store failed")


async def test_an_error_comes_after_the_pages_before_it() -> None:
    listing = Listing(10, fail_at=6)
    got: list[int] = []
    with pytest.raises(RuntimeError, match="page 6 failed"):
        await days_read(listing, got)
    assert got == [1, 2, 3, 4, 5]


async def test_a_storer_that_stops_leaves_no_fetch_running() -> None:
    listing = Listing(1000)
    with pytest.raises(ValueError, match="store failed"):
        await store_failing(listing)
    asked = len(listing.asked)
    await asyncio.sleep(0.05)
    assert len(listing.asked) == asked and asked <= 4


async def test_no_cursor_no_fetch() -> None:
    listing = Listing(3)
    async with contextlib.aclosing(read_ahead(listing.fetch, None)) as batches:
        assert [pages async for pages in batches] == []
    assert listing.asked == []


def test_joined_pages_keep_order_the_last_cursor_and_the_latest_day() -> None:
    bad = Quarantined("9", "listing", "unreadable", {})
    first = PulledPage([{"_id": "a"}], {"page": 2}, date(2024, 1, 5), [bad])
    second = PulledPage([{"_id": "b"}, {"_id": "a"}], None, None)
    page = joined([first, second])
    assert [r["_id"] for r in page.rows] == ["a", "b", "a"]
    assert (page.next_cursor, page.high_water, page.quarantined) == (None, date(2024, 1, 5), [bad])
    assert later(None, date(2024, 1, 1)) == date(2024, 1, 1) and later(date(2024, 1, 3), date(2024, 1, 2)) == date(
        2024, 1, 3
    )
