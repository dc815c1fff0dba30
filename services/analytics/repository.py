"""MongoDB adapter of analytics: one aggregation pass over a report's rows, and the report write."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import rows_pipeline
from shared.sale_rows import ACTION_STATUSES
from shared.source_reports import FINAL_SOURCE_STATES, INGESTED
from shared.totals import REVENUE_STATUSES, Totals, TotalsFold, from_document


def _flag(condition: Any) -> dict[str, Any]:
    return {"$cond": [condition, 1, 0]}


def folded_at_ingest(source: Document) -> Totals | None:
    """An Excel file's totals, folded by ingest as it stored the rows. Its rows never change once
    ingested, so for a report made of that one file they are the report's totals (distinct users
    of several sources cannot be added up, so any other report is scanned)."""
    if source.get("kind", "excel") == "excel" and source.get("status") == INGESTED and source.get("totals"):
        return from_document(source["totals"])
    return None


def chunks_of(source_ids: list[str]) -> dict[str, Any]:
    """The filter for a report's chunks of rows: through its sources, which the sales index leads with."""
    return {"source_report_id": {"$in": source_ids}}


def totals_pipeline(source_ids: list[str]) -> list[dict[str, Any]]:
    """Groups rows by buyer first (so distinct users are counted without a giant set in memory),
    then folds the groups into one document of totals."""
    is_excel = {"$eq": ["$source", "excel"]}
    has_username = {"$gt": [{"$strLenCP": {"$ifNull": ["$username", ""]}}, 0]}
    per_user: dict[str, Any] = {
        "_id": {"$ifNull": ["$user_id", "$customer_key"]},
        "in_u": {"$max": _flag(is_excel)},
        "premium": {"$max": _flag({"$and": [is_excel, {"$eq": ["$is_premium", True]}]})},
        "username": {"$max": _flag({"$and": [is_excel, has_username]})},
        "buyer": {"$max": _flag({"$eq": ["$status", "sale"]})},
        "profit": {
            "$sum": {"$cond": [{"$in": ["$status", list(REVENUE_STATUSES)]}, {"$ifNull": ["$purchase_amount", 0]}, 0]}
        },
    }
    for status in ACTION_STATUSES:
        is_status = {"$eq": ["$status", status]}
        has_period = {"$and": [is_status, {"$ne": [{"$ifNull": ["$action_period_ms", None]}, None]}]}
        per_user[f"n_{status}"] = {"$sum": _flag(is_status)}
        per_user[f"ps_{status}"] = {"$sum": {"$cond": [has_period, "$action_period_ms", 0]}}
        per_user[f"pn_{status}"] = {"$sum": _flag(has_period)}
    known = {"$ne": ["$_id", None]}
    overall: dict[str, Any] = {
        "_id": None,
        "subs": {"$sum": {"$cond": [{"$and": [known, {"$eq": ["$in_u", 1]}]}, 1, 0]}},
        "premium_users": {"$sum": {"$cond": [known, "$premium", 0]}},
        "username_users": {"$sum": {"$cond": [known, "$username", 0]}},
        "buyers": {"$sum": {"$cond": [known, "$buyer", 0]}},
        "profit": {"$sum": "$profit"},
    }
    for status in ACTION_STATUSES:
        for prefix in ("n", "ps", "pn"):
            overall[f"{prefix}_{status}"] = {"$sum": f"${prefix}_{status}"}
    return [*rows_pipeline(chunks_of(source_ids)), {"$group": per_user}, {"$group": overall}]


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(value or 0)


# Chunks fetched per round trip by the scan strategy: a chunk is a hundred rows, so a batch stays
# a few megabytes of BSON, far under the driver's 16 MB message cap.
SCAN_BATCH_CHUNKS = 50


class AnalyticsRepository:
    """`strategy` picks how totals are computed (both give identical totals, tested):
    "aggregate" runs the two-stage `$group` in the database (best on MongoDB proper); "scan"
    streams the report's rows and folds them here (SecantusDB evaluates `$group` expressions in
    Python, far slower than it serves a plain find: docs/benchmarks.md, "Report recompute")."""

    def __init__(self, db: AsyncDatabase[Document], strategy: str = "aggregate") -> None:
        if strategy not in ("aggregate", "scan"):
            raise ValueError(f"unknown totals strategy {strategy!r}")
        self.strategy = strategy
        self.reports = db[COLLECTIONS.reports]
        self.sources = db[COLLECTIONS.source_reports]
        self.sales = db[COLLECTIONS.sales]

    async def report(self, report_id: str) -> Document | None:
        return await self.reports.find_one({"_id": report_id})

    async def totals(self, report_id: str) -> Totals:
        sources = await self.sources.find(
            {"report_id": report_id}, projection={"_id": 1, "kind": 1, "status": 1, "totals": 1}
        ).to_list()
        if not sources:
            return Totals()
        if len(sources) == 1 and (stored := folded_at_ingest(sources[0])) is not None:
            return stored
        source_ids = [s["_id"] for s in sources]
        if self.strategy == "scan":
            return await self.scanned_totals(source_ids)
        return await self.aggregated_totals(source_ids)

    async def scanned_totals(self, source_ids: list[str]) -> Totals:
        fold = TotalsFold()
        # Whole chunks, unwound here: SecantusDB serves whole documents faster than projected or
        # unwound ones.
        async for chunk in self.sales.find(chunks_of(source_ids), batch_size=SCAN_BATCH_CHUNKS):
            for row in chunk["rows"]:
                fold.add(row)
        return fold.result()

    async def aggregated_totals(self, source_ids: list[str]) -> Totals:
        cursor = await self.sales.aggregate(totals_pipeline(source_ids), allowDiskUse=True)
        docs = await cursor.to_list()
        if not docs:
            return Totals()
        d = docs[0]
        return Totals(
            subs=int(d["subs"]),
            premium_users=int(d["premium_users"]),
            username_users=int(d["username_users"]),
            buyers=int(d["buyers"]),
            counts={s: int(d[f"n_{s}"]) for s in ACTION_STATUSES},
            profit=_decimal(d["profit"]),
            period_ms_sum={s: int(d[f"ps_{s}"]) for s in ACTION_STATUSES},
            period_n={s: int(d[f"pn_{s}"]) for s in ACTION_STATUSES},
        )

    async def sources_settled(self, report_id: str) -> bool:
        """True when no source of the report is still being read or synced."""
        unsettled = await self.sources.count_documents(
            {"report_id": report_id, "status": {"$nin": list(FINAL_SOURCE_STATES)}}, limit=1
        )
        return unsettled == 0

    async def save_metrics(
        self, report_id: str, metrics: dict[str, Any], status: str, started: datetime, seconds: float = 0.0
    ) -> bool:
        """Writes the metrics unless a computation that started later has already written its own
        (replicas may recompute one report concurrently; the latest start saw the most rows)."""
        stored = {k: Decimal128(v) if isinstance(v, Decimal) else v for k, v in metrics.items()}
        result = await self.reports.update_one(
            # "Never computed, or computed from a start no later than this one", without an $or:
            # SecantusDB answers any query holding one by scanning every report of every user.
            # `$not $gt` also matches a missing or null computed_from, on MongoDB as on SecantusDB.
            {"_id": report_id, "computed_from": {"$not": {"$gt": started}}},
            {
                "$set": {
                    **stored,
                    "status": status,
                    "error_message": None,
                    "computed_from": started,
                    "recompute_seconds": seconds,
                    "updated_at": datetime.now(started.tzinfo),
                }
            },
        )
        return result.modified_count == 1 or result.matched_count == 1
