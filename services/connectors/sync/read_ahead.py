"""The listing read ahead of its storing: a bounded pipeline of pages.

A platform whose pages are small (Eduzz: 25 sales) must be read at its rate budget, or a large
account's listing takes many times the budget's minimum. So one task fetches page n+1 while page
n is being stored, at most `depth` pages ahead, and the storer takes every page that is waiting
at once (one read, one insert and one checkpoint for all of them): when storing is slower than
fetching, it batches instead of falling behind.

Pages are fetched one after the other, each at the cursor its predecessor returned, so the
puller sees exactly the sequence of calls it would see without the pipeline (the Eduzz puller
counts a window's sales across its pages). Resume stays exact: a checkpoint holds the cursor
after the last page *stored*; pages fetched but not yet stored are fetched again by a resumed run.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable
from datetime import date

from services.connectors.platforms.base.puller import Cursor, PulledPage

# Pages fetched ahead of the storer: 8 SweetClub pages are 8 000 rows in memory, 8 Eduzz pages
# less than a second of the default budget.
DEPTH = 8


async def read_ahead(
    fetch: Callable[[Cursor], Awaitable[PulledPage]], cursor: Cursor | None, depth: int = DEPTH
) -> AsyncGenerator[list[PulledPage]]:
    """Yields the pages from `cursor` to the end of the listing, in order, grouped as they were
    waiting. An error fetching a page is raised after the pages before it have been yielded."""
    waiting: asyncio.Queue[PulledPage | Exception | None] = asyncio.Queue(maxsize=max(1, depth))

    async def fetcher(at: Cursor | None) -> None:
        try:
            while at is not None:
                page = await fetch(at)
                await waiting.put(page)
                at = page.next_cursor
        except Exception as exc:  # handed to the storer, which raises it in order
            await waiting.put(exc)
            return
        await waiting.put(None)

    task = asyncio.create_task(fetcher(cursor))
    try:
        while True:
            got = [await waiting.get()]
            while not waiting.empty():
                got.append(waiting.get_nowait())
            pages = [p for p in got if isinstance(p, PulledPage)]
            if pages:
                yield pages
            end = got[-1]  # an error or the end is always the last thing the fetcher puts
            if isinstance(end, Exception):
                raise end
            if end is None:
                return
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def joined(pages: list[PulledPage]) -> PulledPage:
    """Consecutive pages as one: their rows in order (a sale listed twice keeps its later state),
    the last page's cursor, the latest day seen."""
    days = [p.high_water for p in pages if p.high_water is not None]
    return PulledPage(
        rows=[row for p in pages for row in p.rows],
        next_cursor=pages[-1].next_cursor,
        high_water=max(days, default=None),
        quarantined=[q for p in pages for q in p.quarantined],
    )


def later(day: date | None, other: date | None) -> date | None:
    if day is None or other is None:
        return day or other
    return max(day, other)
