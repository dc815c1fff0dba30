"""The Idempotency-Key lease (services/gateway/idempotency.py) on the real database: a live holder
keeps its key however long it works, a dead one's key is taken over by exactly one waiter once its
beat has stood still for the lease, and a finished request's answer is what every later one gets."""

from __future__ import annotations

import asyncio
import contextlib

from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.idempotency import STILL_IN_PROGRESS, Answer, Claim, IdempotencyKeys
from shared.mongo import COLLECTIONS, Document


def keys(db: AsyncDatabase[Document], wait: float = 5.0) -> IdempotencyKeys:
    return IdempotencyKeys(db, beat_seconds=0.1, lease_seconds=0.6, wait_seconds=wait, poll_seconds=0.05)


async def test_a_live_holder_keeps_its_key_and_its_answer_is_returned(db: AsyncDatabase[Document]) -> None:
    first = await keys(db).claim("u:k")
    assert isinstance(first, Claim) and first.stranded is None
    async with keys(db).held(first):
        # a waiter gives up with 409 (its wait is short here), never taking a renewed lease over
        assert await keys(db, wait=1.5).claim("u:k") == STILL_IN_PROGRESS
        await keys(db).answer(first, Answer(200, {"report_id": "r1"}))
    assert await keys(db).claim("u:k") == Answer(200, {"report_id": "r1"})


async def test_a_dead_holders_key_is_taken_over_by_exactly_one_waiter(db: AsyncDatabase[Document]) -> None:
    dead = await keys(db).claim("u:k")
    assert isinstance(dead, Claim)
    await keys(db).note(dead, {"report_id": "r-dead"})  # and then it died: no beat, no answer
    loop = asyncio.get_running_loop()
    started = loop.time()
    took: list[float] = []

    async def waiter(holding: contextlib.AsyncExitStack) -> Claim | Answer:
        claim = await keys(db, wait=3.0).claim("u:k")
        if isinstance(claim, Claim):  # the taker works on, renewing the lease, as a gateway does
            took.append(loop.time() - started)
            await holding.enter_async_context(keys(db).held(claim))
        return claim

    async with contextlib.AsyncExitStack() as holding:
        waiters = await asyncio.gather(waiter(holding), waiter(holding))
        takers = [w for w in waiters if isinstance(w, Claim)]
        assert len(takers) == 1 and waiters.count(STILL_IN_PROGRESS) == 1
    taker = takers[0]
    assert taker.stranded is not None and taker.stranded["report_id"] == "r-dead"
    assert 0.6 <= took[0] < 2.0, took
    stored = await db[COLLECTIONS.idempotency].find_one({"_id": "u:k"})
    assert stored is not None and stored["owner"] == taker.owner
    # the dead holder, were it only slow, can no longer answer nor release the key
    await keys(db).answer(dead, Answer(200, {"report_id": "r-dead"}))
    await keys(db).release(dead)
    await keys(db).answer(taker, Answer(200, {"report_id": "r-taker"}))
    assert await keys(db).claim("u:k") == Answer(200, {"report_id": "r-taker"})


async def test_a_claim_of_an_older_release_is_taken_over_and_a_released_key_claimed_anew(
    db: AsyncDatabase[Document],
) -> None:
    await db[COLLECTIONS.idempotency].insert_one({"_id": "u:old", "response": None, "report_id": None})
    taker = await keys(db).claim("u:old")
    assert isinstance(taker, Claim) and taker.stranded is not None
    await keys(db).release(taker)
    again = await keys(db).claim("u:old")
    assert isinstance(again, Claim) and again.stranded is None
