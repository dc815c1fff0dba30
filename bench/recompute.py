"""Report recompute time (analytics' totals + the metric arithmetic) over N sale rows already in
SecantusDB, median of --repeat runs. The rows are stored as ingest stores them, packed into chunks
(`shared.sale_chunks`), and carry what issue 16 reads: currencies (RUB, BRL, USD), invite links
(--links distinct ones), unsubscribes.

Timed in the same run, interleaved:
- baseline: the recompute before issue 16 (`bench.seed_totals`: no currencies, first touches,
  retention or links), scanning the same chunks;
- with links: today's scan recompute (`AnalyticsRepository.totals` + `compute_metrics` with rates
  and link costs: currencies, retention and the links table included);
- a count of the same rows (the chunks unwound and counted by the server), as before;
- with --aggregate, the `$group` strategy as well (slow on SecantusDB; the bench then asserts both
  strategies give identical figures).

    .venv/bin/python -m bench.recompute [--rows 100000] [--repeat 3] [--links 10000] [--aggregate] [--skip-count]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson import Decimal128, Int64
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from bench.seed_totals import TotalsFold as SeedFold
from services.analytics.metrics import ReportFigures, compute_metrics
from services.analytics.repository import SCAN_BATCH_CHUNKS, AnalyticsRepository, chunks_of
from shared.mongo import ensure_indexes
from shared.sale_chunks import ChunkPacker, count_pipeline
from tests.reliability.harness import SecantusProcess

RATES = {"BRL": Decimal("16.20"), "USD": Decimal("95")}
T0 = datetime(2024, 1, 1, tzinfo=UTC)


def sale_docs(n: int, report_id: str, links: int) -> list[dict[str, object]]:
    rnd = random.Random(3)
    names = [f"https://t.me/+link{i}" for i in range(links)]
    docs: list[dict[str, object]] = []
    for i in range(n):
        status = rnd.choice(["sale", "lead", "funnel", None])
        sub = T0 + timedelta(minutes=rnd.randrange(90 * 24 * 60))
        docs.append({
            "_id": f"{report_id}:{i}", "report_id": report_id, "source_report_id": "s", "source": "excel",
            "row": i + 2, "user_id": Int64(rnd.randrange(n // 2 or 1)), "status": status,
            "purchase_amount": Decimal128(Decimal(rnd.randrange(100, 100_000)) / 100) if status == "sale" else None,
            "currency": rnd.choice(["RUB", "RUB", "RUB", "BRL", "USD"]),
            "is_premium": rnd.random() < 0.3, "username": "u" if rnd.random() < 0.6 else "",
            "invite_link": rnd.choice(names) if rnd.random() < 0.9 else None,
            "sub_date": sub, "unsub_date": sub + timedelta(days=rnd.randrange(60)) if rnd.random() < 0.3 else None,
            "action_date": sub + timedelta(hours=5) if status else None,
            "action_period_ms": 5 * 3_600_000 if status else None,
        })  # fmt: skip
    return docs


async def seed_recompute(db: AsyncDatabase[dict[str, Any]]) -> object:
    """The recompute before issue 16: the same find of the chunks, folded by the seed's fold."""
    sources = await db.source_reports.find({"report_id": "r1"}, projection={"_id": 1}).to_list()
    fold = SeedFold()
    async for chunk in db.sales.find(chunks_of([s["_id"] for s in sources]), batch_size=SCAN_BATCH_CHUNKS):
        for row in chunk["rows"]:
            fold.add(row)
    return fold.result()


async def recompute(db: AsyncDatabase[dict[str, Any]], strategy: str, costs: dict[str, Decimal]) -> ReportFigures:
    totals = await AnalyticsRepository(db, strategy).totals("r1", "RUB")
    return compute_metrics(Decimal(100000), totals, currency="RUB", exchange_rates=RATES, link_costs=costs)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc): the database's share of a measure,
    which wall time under a shared machine's load does not separate from the others'."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run(rows: int, repeat: int, links: int, aggregate: bool, skip_count: bool = False) -> None:
    mongo = SecantusProcess()
    mongo.start()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo.url, tz_aware=True)
    try:
        db = client["bench_recompute"]
        await ensure_indexes(db)
        docs = sale_docs(rows, "r1", links)
        await db.source_reports.insert_one({"_id": "s", "report_id": "r1"})
        started = time.perf_counter()
        packer = ChunkPacker()
        for i in range(0, rows, 5_000):
            await db.sales.insert_many(packer.add(docs[i : i + 5_000]), ordered=False)
        await db.sales.insert_many(packer.flush(), ordered=False)
        # The analytics process holds none of the generated rows: drop them, or every collection of
        # the fold's young objects walks a million bench dicts (it made the pairs swing 0.7-2.1x).
        del docs
        gc.collect()
        print(f"inserted {rows} rows ({links} links) in {time.perf_counter() - started:.1f}s")
        costs = {f"https://t.me/+link{i}": Decimal(1000 + i) for i in range(0, links, 2)}

        async def count() -> object:
            return await (await db.sales.aggregate(count_pipeline({"source_report_id": "s"}))).to_list()

        measures: dict[str, Callable[[], Awaitable[object]]] = {} if skip_count else {"count of the rows": count}
        measures |= {
            "baseline: recompute before issue 16 (scan)": lambda: seed_recompute(db),
            "recompute with currencies, retention and links (scan)": lambda: recompute(db, "scan", costs),
        }
        if aggregate:
            measures["recompute with links (aggregate)"] = lambda: recompute(db, "aggregate", costs)
        times: dict[str, list[float]] = {name: [] for name in measures}
        cpu: dict[str, list[float]] = {name: [] for name in measures}
        assert mongo.proc is not None
        server_pid = mongo.proc.pid
        results: dict[str, object] = {}
        for _ in range(repeat):
            for name, measure in measures.items():
                t, c, server = time.perf_counter(), time.process_time(), _cpu_seconds(server_pid)
                results[name] = await measure()
                times[name].append(time.perf_counter() - t)
                cpu[name].append(time.process_time() - c + _cpu_seconds(server_pid) - server)
        figures = results["recompute with currencies, retention and links (scan)"]
        assert isinstance(figures, ReportFigures)
        # Every link some user first came through, and the rows without one.
        assert 0.9 * links < len(figures.links) <= links + 1, len(figures.links)
        print(f"links table: {len(figures.links)} entries")
        assert sum(entry["subs"] for entry in figures.links) == figures.fields["subs"]
        if aggregate:
            assert results["recompute with links (aggregate)"] == figures, "the strategies disagree"
        baseline = "baseline: recompute before issue 16 (scan)"
        base, base_cpu = statistics.median(times[baseline]), statistics.median(cpu[baseline])
        for name, runs in times.items():
            med, med_cpu = statistics.median(runs), statistics.median(cpu[name])
            pairs = [a / b for a, b in zip(runs, times[baseline], strict=True)]
            print(
                f"{name} over {rows} rows: median {med:.2f}s ({rows / med:,.0f} rows/s), "
                f"{med / base:.2f}× the baseline (median of the run pairs {statistics.median(pairs):.2f}×), "
                f"runs {[round(x, 2) for x in runs]}; CPU (bench + database) median {med_cpu:.2f}s, "
                f"{med_cpu / base_cpu:.2f}× the baseline's, runs {[round(x, 2) for x in cpu[name]]}"
            )
    finally:
        await client.close()
        mongo.remove()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--links", type=int, default=10_000)
    parser.add_argument("--aggregate", action="store_true", help="time the $group strategy too (slow on SecantusDB)")
    parser.add_argument("--skip-count", action="store_true", help="leave out the count of the rows (not the baseline)")
    args = parser.parse_args()
    asyncio.run(run(args.rows, args.repeat, args.links, args.aggregate, args.skip_count))


if __name__ == "__main__":
    main()
