"""Lookups that used to scan a whole collection, timed against the queries that replaced them, on
one SecantusDB filled the way a store looks after many uploads.

    .venv/bin/python -m bench.lookups [--rows 200000] [--uploads 20000] [--repeat 5]

- **refund**: finding and marking a refunded SweetClub sale among `--rows` sale rows (four
  connector source reports of one connection, the `sales` collection with its real index). Before:
  a match on `extra.connection_id` and `extra.external_id`, which no index covers. Now
  (`commands.apply_refund`): `_id $in`, one id per source report of the connection.
- **scheduler tick**: the connectors' scheduler asking, every tick on every replica, which
  connections have sources to sync, among `--uploads` Excel source reports and 50 connector ones
  (the `source_reports` indexes as `ensure_indexes` makes them). Before: one `distinct` with an
  `$or`. Now (`Scheduler.tick`): two equality `distinct`s on sparse indexes.
- **due poll**: marking a polled connection's sources to sync, among the same source reports.
  Before: one `update_many` with an `$or` (open period or not yet successful). Now
  (`Scheduler._mark_due_polls`): the connection's sources by index, `due_for_poll` in Python,
  then `update_many` by `_id $in`.

Each pair is interleaved `--repeat` times; medians quoted, with the ratio to the query used now.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from bench.index_cost import sale_rows
from services.connectors.sync import due_for_poll
from shared.mongo import COLLECTIONS, ensure_indexes
from tests.infra import MongoServer

CONNECTION = "conn-refunds"
MOMENT = datetime(2026, 11, 23, tzinfo=UTC)


def refund(sales: Collection[dict[str, Any]], query: dict[str, Any]) -> object:
    ids = [r["_id"] for r in sales.find(query, projection={"_id": 1})]
    assert ids, f"nothing matched {query}"
    return sales.update_many({"_id": {"$in": ids}}, {"$set": {"status": "refunded"}}).matched_count


def fill(db: Database[dict[str, Any]], rows: int, uploads: int) -> None:
    sources = [f"src{s}" for s in range(4)]
    for source in sources:
        docs = sale_rows(source, rows // len(sources))
        for d in docs:
            d["extra"] = {"connection_id": CONNECTION, "external_id": str(d["row"])}
        for j in range(0, len(docs), 5_000):
            db[COLLECTIONS.sales].insert_many(docs[j : j + 5_000], ordered=False)
    excel: list[dict[str, Any]] = [
        {"_id": f"x{i}", "report_id": f"r{i}", "kind": "excel", "status": "success", "name": "c.xlsx", "rows": 100}
        for i in range(uploads)
    ]
    connector: list[dict[str, Any]] = [
        {"_id": f"c{i}", "report_id": f"r{i}", "kind": "connector", "connection_id": f"conn{i % 10}",
         "status": "failed" if i == 11 else "success", "sync_requested": i == 7,
         "period_end": MOMENT + timedelta(days=30 if i % 20 == 1 else -90),
         "progress": {"state": "running" if i == 21 else "done"}}
        for i in range(50)
    ]  # fmt: skip
    db[COLLECTIONS.source_reports].insert_many(excel + connector)


def mark_due(sources: Collection[dict[str, Any]]) -> object:
    found = sources.find({"connection_id": "conn1", "kind": "connector"}, {"period_end": 1, "status": 1})
    due = [sr["_id"] for sr in found if due_for_poll(sr, MOMENT)]
    return sources.update_many({"_id": {"$in": due}}, {"$set": {"sync_requested": True}}).matched_count


def timed(query: Callable[[int], object], k: int) -> tuple[float, object]:
    started = time.perf_counter()
    result = query(k)
    return time.perf_counter() - started, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--uploads", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = MongoServer()
    server.start()
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url)
        asyncio.run(ensure_indexes(client["bench_lookups"]))
        db: Database[dict[str, Any]] = MongoClient(server.url)["bench_lookups"]
        fill(db, args.rows, args.uploads)
        sales, sources = db[COLLECTIONS.sales], db[COLLECTIONS.source_reports]
        per_source = args.rows // 4
        pairs: dict[str, dict[str, Callable[[int], object]]] = {
            f"refund, {args.rows:,} sale rows": {
                "before: extra fields": lambda k: refund(
                    sales, {"extra.connection_id": CONNECTION, "extra.external_id": str(2 + k * 7_919 % per_source)}
                ),
                "now: _id $in": lambda k: refund(
                    sales, {"_id": {"$in": [f"src{s}:{2 + (k * 7_919 + 1) % per_source}" for s in range(4)]}}
                ),
            },
            f"scheduler tick, {args.uploads:,} uploads": {
                "before: one $or": lambda _: sorted(
                    sources.distinct(
                        "connection_id",
                        {"kind": "connector", "$or": [{"sync_requested": True}, {"progress.state": "running"}]},
                    )
                ),
                "now: two equalities": lambda _: sorted(
                    {
                        *sources.distinct("connection_id", {"sync_requested": True, "kind": "connector"}),
                        *sources.distinct("connection_id", {"progress.state": "running", "kind": "connector"}),
                    }
                ),
            },
            f"due poll, {args.uploads:,} uploads": {
                "before: one $or": lambda _: (
                    sources.update_many(
                        {
                            "connection_id": "conn1",
                            "kind": "connector",
                            "$or": [
                                {"period_end": {"$gte": MOMENT - timedelta(days=1)}},
                                {"status": {"$ne": "success"}},
                            ],
                        },
                        {"$set": {"sync_requested": True}},
                    ).matched_count
                ),
                "now: index, then _id $in": lambda _: mark_due(sources),
            },
        }
        for title, queries in pairs.items():
            times: dict[str, list[float]] = {name: [] for name in queries}
            answers: dict[str, object] = {}
            for k in range(args.repeat):
                for name, query in queries.items():
                    seconds, answers[name] = timed(query, k)
                    times[name].append(seconds)
            assert len({repr(a) for a in answers.values()}) == 1, f"the two queries disagree: {answers}"
            now = statistics.median(times[list(queries)[-1]])
            print(title)
            for name, t in times.items():
                med = statistics.median(t)
                print(f"  {name:<24} median {med * 1000:9.1f} ms  {med / now:7.0f}×")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
