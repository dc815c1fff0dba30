"""The gateway's wait for ingest's verdict, on the real database: woken by the source report's own
change (not a poll's next tick), a verdict written before the wait began is seen at once, other
documents' changes do not end the wait, and the deadline is kept."""

from __future__ import annotations

import asyncio
import time

from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.creation import _poll_for_verdict, _watch_for_verdict
from shared.mongo import COLLECTIONS, Document

VERDICT = {"ok": True, "rows": 3}


async def _source(db: AsyncDatabase[Document], source_id: str, verdict: object = None) -> None:
    await db[COLLECTIONS.source_reports].insert_one({"_id": source_id, "verdict": verdict, "status": "pending"})


async def _write_verdict_later(db: AsyncDatabase[Document], source_id: str, after: float) -> float:
    await asyncio.sleep(after)
    await db[COLLECTIONS.source_reports].update_one({"_id": "other"}, {"$set": {"status": "parsing"}})
    await asyncio.sleep(0.05)
    written = time.monotonic()
    await db[COLLECTIONS.source_reports].update_one({"_id": source_id}, {"$set": {"verdict": VERDICT}})
    return written


async def test_the_wait_ends_when_the_verdict_is_written(db: AsyncDatabase[Document]) -> None:
    await _source(db, "s1")
    await _source(db, "other")
    writer = asyncio.create_task(_write_verdict_later(db, "s1", 0.6))
    verdict = await _watch_for_verdict(db, "s1", time.monotonic() + 30)
    noticed = time.monotonic()
    written = await writer
    assert verdict == VERDICT
    # A poll growing to 250 ms would typically notice it 100-250 ms after 0.65 s; the stream's
    # event comes with the write (generous bound for a loaded machine).
    assert noticed - written < 0.2


async def test_a_verdict_already_written_is_seen_at_once(db: AsyncDatabase[Document]) -> None:
    await _source(db, "s2", VERDICT)
    started = time.monotonic()
    assert await _watch_for_verdict(db, "s2", started + 30) == VERDICT
    assert time.monotonic() - started < 1.0


async def test_the_deadline_is_kept(db: AsyncDatabase[Document]) -> None:
    await _source(db, "s3")
    started = time.monotonic()
    assert await _watch_for_verdict(db, "s3", started + 0.5) is None
    assert await _poll_for_verdict(db, "s3", time.monotonic() + 0.3) is None
    assert 0.8 <= time.monotonic() - started < 3.0
