"""How late the gateway notices ingest's verdict: the change stream against the poll it replaced.

    .venv/bin/python -m bench.verdict_wait [--rounds 20]

Own SecantusDB. Each round makes a source report, starts the gateway's wait on it
(services.gateway.creation: `_watch_for_verdict`, or `_poll_for_verdict`, the old 20 ms → 250 ms
poll, now the fallback), writes the verdict from a second client after a random 0.1–1.5 s (a small
file's parse), and times from the write's acknowledgement to the wait's return. Alternating
rounds, medians; the poll is the named baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
import uuid

from pymongo import AsyncMongoClient

from services.gateway.creation import _poll_for_verdict, _watch_for_verdict
from shared.mongo import COLLECTIONS
from tests.infra import MongoServer


async def one(url: str, how: str, after: float) -> float:
    waiter_client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    writer_client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(url)
    try:
        db, other = waiter_client["bench"], writer_client["bench"]
        source_id = uuid.uuid4().hex
        await db[COLLECTIONS.source_reports].insert_one({"_id": source_id, "verdict": None})
        wait = _watch_for_verdict if how == "stream" else _poll_for_verdict
        waiting = asyncio.create_task(wait(db, source_id, time.monotonic() + 30))
        await asyncio.sleep(after)
        await other[COLLECTIONS.source_reports].update_one({"_id": source_id}, {"$set": {"verdict": {"ok": True}}})
        written = time.monotonic()
        assert await waiting == {"ok": True}
        return time.monotonic() - written
    finally:
        await waiter_client.close()
        await writer_client.close()


async def run(url: str, rounds: int) -> None:
    rnd = random.Random(7)
    late: dict[str, list[float]] = {"poll": [], "stream": []}
    for i in range(rounds):
        after = rnd.uniform(0.1, 1.5)
        for how in ("poll", "stream") if i % 2 == 0 else ("stream", "poll"):
            late[how].append(await one(url, how, after))
    for how, xs in late.items():
        print(
            f"{how:<7} verdict noticed after the write: median {statistics.median(xs) * 1000:6.1f} ms, "
            f"max {max(xs) * 1000:6.1f} ms"
        )
    p, s = statistics.median(late["poll"]), statistics.median(late["stream"])
    print(f"stream / poll: {s / p:.2f}x ({(p - s) * 1000:.0f} ms less per upload, median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    mongo = MongoServer()
    mongo.start()
    try:
        asyncio.run(run(mongo.url, args.rounds))
    finally:
        mongo.remove()


if __name__ == "__main__":
    main()
