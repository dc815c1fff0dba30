"""Lookups that used to scan a whole collection, timed against the queries that replaced them, on
one SecantusDB filled the way a store looks after many uploads.

    .venv/bin/python -m bench.lookups [--rows 200000] [--uploads 20000] [--connections 20000] [--repeat 5]

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
- **report metrics write**: analytics saving a report's metrics unless a later computation wrote
  first, among `--uploads` reports. Before: `_id` and an `$or` on `computed_from`. Now
  (`AnalyticsRepository.save_metrics`): `_id` and `computed_from $not $gt`.
- **listing with a period**: a page of one source's sale rows in a period (`action_date`, or
  `sub_date` for rows without one), among the `--rows` sale rows. Before: one `find` holding the
  period's `$or`. Now (`reports.list_sales`): an aggregation whose first `$match` is the indexed
  equalities and whose second is the period.
- **schedule pass**: the connectors' scheduler finding due polls and each platform's sync lag among
  `--connections` polled connections. Before: one find for the due ones and a sorted `find_one`
  per platform, every tick. Now (`Scheduler._schedule_pass`): one find feeding both (and every
  `schedule_seconds`, not every tick, which this bench does not count).

Each pair is interleaved `--repeat` times; medians quoted, with the ratio to the query used now.

The refund and listing pairs store one document per sale row, the layout these fixes were made
on; rows are now packed into chunks (`shared.sale_chunks`), where a synced sale is still a document
of its own found by `_id`, and a listing still selects the source's rows by the indexed equalities
before the period applies.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bson import Int64
from pymongo import AsyncMongoClient, MongoClient
from pymongo.collection import Collection
from pymongo.database import Database

from bench.index_cost import sale_rows
from services.connectors.platforms import KINDS
from services.connectors.sync import due_for_poll, poll_is_due, sync_lag_seconds
from shared.mongo import COLLECTIONS, ensure_indexes
from tests.infra import MongoServer

CONNECTION = "conn-refunds"
MOMENT = datetime(2026, 11, 23, tzinfo=UTC)


def refund(sales: Collection[dict[str, Any]], query: dict[str, Any]) -> object:
    ids = [r["_id"] for r in sales.find(query, projection={"_id": 1})]
    assert ids, f"nothing matched {query}"
    return sales.update_many({"_id": {"$in": ids}}, {"$set": {"status": "refunded"}}).matched_count


def fill(db: Database[dict[str, Any]], rows: int, uploads: int, connections: int) -> None:
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
    db[COLLECTIONS.reports].insert_many(
        [{"_id": f"r{i}", "creator_id": i % 500, "status": "success", "computed_from": MOMENT} for i in range(uploads)]
    )
    polled: list[dict[str, Any]] = [
        {"_id": f"conn{i}", "kind": KINDS[i % 3], "creator_id": i, "credentials": "c" * 300,
         "poll_interval_seconds": 900 if i % 4 else 0, "next_poll_at": MOMENT + timedelta(seconds=i - 5) if i % 4 else None,
         "last_synced_at": MOMENT - timedelta(seconds=i % 7_919), "created_at": MOMENT - timedelta(days=9)}
        for i in range(connections)
    ]  # fmt: skip
    for j in range(0, connections, 5_000):
        db[COLLECTIONS.connections].insert_many(polled[j : j + 5_000])


def schedule_before(connections: Collection[dict[str, Any]]) -> object:
    due = connections.find(
        {"poll_interval_seconds": {"$gt": 0}, "next_poll_at": {"$lte": MOMENT}}, {"poll_interval_seconds": 1}
    )
    lag = {}
    for kind in KINDS:
        oldest = connections.find_one(
            {"kind": kind, "poll_interval_seconds": {"$gt": 0}}, {"last_synced_at": 1}, sort=[("last_synced_at", 1)]
        )
        lag[kind] = 0.0 if oldest is None else (MOMENT - oldest["last_synced_at"].replace(tzinfo=UTC)).total_seconds()
    return sorted(c["_id"] for c in due), lag


def schedule_now(connections: Collection[dict[str, Any]]) -> object:
    polled = list(
        connections.find(
            {"poll_interval_seconds": {"$gt": 0}},
            {"kind": 1, "poll_interval_seconds": 1, "next_poll_at": 1, "last_synced_at": 1, "created_at": 1},
        )
    )
    for c in polled:  # the sync driver hands back naive UTC datetimes
        c.update({k: c[k].replace(tzinfo=UTC) for k in ("next_poll_at", "last_synced_at", "created_at")})
    return sorted(c["_id"] for c in polled if poll_is_due(c, MOMENT)), sync_lag_seconds(polled, MOMENT)


def period_page(sales: Collection[dict[str, Any]], source: str, k: int, split: bool) -> object:
    start = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=1_000 + k * 97)
    period = {"$gte": start, "$lte": start + timedelta(minutes=2_000)}
    owned = {"source_report_id": source, "status": "sale", "creator_id": 1, "channel_id": Int64(-1001234567890)}
    either = [{"action_date": period}, {"action_date": None, "sub_date": period}]
    sort = {"row": 1, "_id": 1}
    if not split:
        ids = [d["_id"] for d in sales.find({**owned, "$or": either}, sort=list(sort.items()), skip=10, limit=50)]
    else:
        pipeline: list[dict[str, Any]] = [
            {"$match": owned},
            {"$match": {"$or": either}},
            {"$sort": sort},
            {"$skip": 10},
            {"$limit": 50},
        ]
        ids = [d["_id"] for d in sales.aggregate(pipeline)]
    assert len(ids) == 50, ids
    return ids


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
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    server = MongoServer()
    server.start()
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url)
        asyncio.run(ensure_indexes(client["bench_lookups"]))
        db: Database[dict[str, Any]] = MongoClient(server.url)["bench_lookups"]
        fill(db, args.rows, args.uploads, args.connections)
        sales, sources = db[COLLECTIONS.sales], db[COLLECTIONS.source_reports]
        reports, connections = db[COLLECTIONS.reports], db[COLLECTIONS.connections]
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
            f"report metrics write, {args.uploads:,} reports": {
                "before: _id and $or": lambda k: (
                    reports.update_one(
                        {"_id": f"r{k}", "$or": [{"computed_from": None}, {"computed_from": {"$lte": MOMENT}}]},
                        {"$set": {"subs": k}},
                    ).matched_count
                ),
                "now: _id and $not $gt": lambda k: (
                    reports.update_one(
                        {"_id": f"r{k}", "computed_from": {"$not": {"$gt": MOMENT}}}, {"$set": {"subs": k}}
                    ).matched_count
                ),
            },
            f"listing with a period, {args.rows:,} sale rows": {
                "before: find with $or": lambda k: period_page(sales, "src1", k, split=False),
                "now: index $match, then period": lambda k: period_page(sales, "src1", k, split=True),
            },
            f"schedule pass, {args.connections:,} connections": {
                "before: 1 find + 3 find_one": lambda _: schedule_before(connections),
                "now: one find": lambda _: schedule_now(connections),
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
                print(f"  {name:<32} median {med * 1000:9.1f} ms  {med / now:7.0f}×")
    finally:
        server.remove()


if __name__ == "__main__":
    main()
