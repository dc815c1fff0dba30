"""The gateway's report read (`reports.report_view`, one `$lookup`) against the two reads it
replaced (the report and its sources, issued together), on one SecantusDB, in this process.

    .venv/bin/python -m bench.report_read [--reports 20000] [--calls 500] [--rounds 5]

Every database call costs the gateway's event loop CPU in PyMongo's async driver whatever it
returns, so the figure that matters is the CPU per report read; wall time per read is printed too.
The two are interleaved `--rounds` times, medians quoted; the bench asserts both give the same view.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Decimal128, Int64
from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway import reports
from services.gateway.auth import User
from shared.mongo import COLLECTIONS, Document, ensure_indexes, make_client
from shared.reports import NUMBER_METRIC_NAMES
from shared.settings import Settings
from tests.infra import MongoServer

T0 = datetime(2026, 1, 1, tzinfo=UTC)
USER = User(1, "bench")


async def two_reads(db: AsyncDatabase[Document], user: User, report_id: str) -> dict[str, Any] | None:
    """The baseline: the report and its sources as two concurrent reads, as the gateway did until
    2026-11-23, then the same view `report_view` builds (its sources come already sorted)."""
    doc, sources = await asyncio.gather(
        db[COLLECTIONS.reports].find_one({"_id": report_id, "creator_id": user.id}),
        db[COLLECTIONS.source_reports]
        .find({"report_id": report_id}, sort=[("created_at", ASCENDING), ("_id", ASCENDING)])
        .to_list(),
    )
    return None if doc is None else reports.view_of(doc, sources)


async def fill(db: AsyncDatabase[Document], n: int) -> None:
    metrics = {field: Decimal128("1.5") for field in NUMBER_METRIC_NAMES}
    for start in range(0, n, 5_000):
        span = range(start, min(start + 5_000, n))
        await db[COLLECTIONS.reports].insert_many(
            [{"_id": f"r{i}", "creator_id": 1, "channel_id": Int64(-1001), "name": f"campaign {i}", "status": "success",
              "budget": Decimal128("1000"), "created_at": T0, **metrics} for i in span]
        )  # fmt: skip
        await db[COLLECTIONS.source_reports].insert_many(
            [{"_id": f"s{i}-{k}", "report_id": f"r{i}", "created_at": T0 + timedelta(minutes=k), "name": "c.xlsx",
              "status": "ingested", "rows": 1_000} for i in span for k in range(2)]
        )  # fmt: skip


async def measure(args: argparse.Namespace) -> None:
    server = MongoServer()
    server.start()
    try:
        # The gateway's own client options (tz-aware, as the views expect).
        client: AsyncMongoClient[Document] = make_client(Settings(mongo_url=server.url))
        db = client["bench_report_read"]
        await ensure_indexes(db)
        await fill(db, args.reports)
        contenders: dict[str, Callable[[AsyncDatabase[Document], User, str], Awaitable[dict[str, Any] | None]]] = {
            "before: two reads": two_reads,
            "now: one $lookup": reports.report_view,
        }
        for k in range(50):  # the two agree, and the connection pool is warm
            rid = f"r{k * 7_919 % args.reports}"
            assert await two_reads(db, USER, rid) == await reports.report_view(db, USER, rid)
        cpu: dict[str, list[float]] = {name: [] for name in contenders}
        wall: dict[str, list[float]] = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, read in contenders.items():
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for k in range(args.calls):
                    assert await read(db, USER, f"r{k * 7_919 % args.reports}") is not None
                cpu[name].append((time.process_time() - cpu0) / args.calls)
                wall[name].append((time.perf_counter() - wall0) / args.calls)
        now = statistics.median(cpu["now: one $lookup"])
        print(f"report read, {args.reports:,} reports, {args.calls} reads per round, medians of {args.rounds}")
        for name in contenders:
            c, w = statistics.median(cpu[name]), statistics.median(wall[name])
            print(f"  {name:<20} CPU {c * 1e6:7.0f} µs/read ({c / now:4.2f}×)   wall {w * 1e3:6.2f} ms/read")
        await client.close()
    finally:
        server.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reports", type=int, default=20_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    asyncio.run(measure(parser.parse_args()))


if __name__ == "__main__":
    main()
