"""Report recompute time (analytics' totals + the metric arithmetic) over N sale rows already in
SecantusDB, median of --repeat runs, for both totals strategies ("aggregate": the two-stage
`$group` in the database; "scan": a plain find of the chunks folded in the analytics process). The
rows are stored as ingest stores them, packed into chunks (`shared.sale_chunks`). The baseline is a
count of the same rows (the chunks unwound and counted in the database), measured in the same run.

    .venv/bin/python -m bench.recompute [--rows 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from decimal import Decimal

from bson import Decimal128, Int64
from pymongo import AsyncMongoClient

from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository
from shared.mongo import ensure_indexes
from shared.sale_chunks import ChunkPacker, count_pipeline
from tests.reliability.harness import SecantusProcess


def sale_docs(n: int, report_id: str) -> list[dict[str, object]]:
    rnd = random.Random(3)
    docs: list[dict[str, object]] = []
    for i in range(n):
        status = rnd.choice(["sale", "lead", "funnel", None])
        docs.append({
            "_id": f"{report_id}:{i}", "report_id": report_id, "source_report_id": "s", "source": "excel",
            "row": i + 2, "user_id": Int64(rnd.randrange(n // 2 or 1)), "status": status,
            "purchase_amount": Decimal128(Decimal(rnd.randrange(100, 100_000)) / 100) if status == "sale" else None,
            "is_premium": rnd.random() < 0.3, "username": "u" if rnd.random() < 0.6 else "",
            "action_period_ms": rnd.randrange(60_000, 10 * 86_400_000) if status else None,
        })  # fmt: skip
    return docs


async def run(rows: int, repeat: int) -> None:
    mongo = SecantusProcess()
    mongo.start()
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo.url)
    try:
        db = client["bench_recompute"]
        await ensure_indexes(db)
        docs = sale_docs(rows, "r1")
        await db.source_reports.insert_one({"_id": "s", "report_id": "r1"})
        started = time.perf_counter()
        packer = ChunkPacker()
        for i in range(0, rows, 5_000):
            await db.sales.insert_many(packer.add(docs[i : i + 5_000]), ordered=False)
        await db.sales.insert_many(packer.flush(), ordered=False)
        print(f"inserted {rows} rows in {time.perf_counter() - started:.1f}s")
        counts: list[float] = []
        times: dict[str, list[float]] = {"aggregate": [], "scan": []}
        results = {}
        for _ in range(repeat):
            for strategy, runs in times.items():
                t = time.perf_counter()
                results[strategy] = compute_metrics(
                    Decimal(100000), await AnalyticsRepository(db, strategy).totals("r1")
                )
                runs.append(time.perf_counter() - t)
            t = time.perf_counter()
            counted = await (await db.sales.aggregate(count_pipeline({"source_report_id": "s"}))).to_list()
            counts.append(time.perf_counter() - t)
            assert counted[0]["rows"] == rows
        assert results["aggregate"] == results["scan"], "the strategies disagree"
        base = statistics.median(counts)
        print(f"baseline count of the same rows: median {base:.2f}s, runs {[round(x, 2) for x in counts]}")
        for strategy, runs in times.items():
            med = statistics.median(runs)
            print(
                f"recompute ({strategy}) over {rows} rows: median {med:.2f}s ({rows / med:,.0f} rows/s), "
                f"{med / base:.1f}× the count, runs {[round(x, 2) for x in runs]}"
            )
    finally:
        await client.close()
        mongo.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeat))


if __name__ == "__main__":
    main()
