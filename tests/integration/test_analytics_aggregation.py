"""The MongoDB aggregation computes exactly what the reference Python fold computes."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from bson import Decimal128, Int64

from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository
from shared.sale_chunks import pack
from shared.totals import to_document, totals_from_rows


def random_rows(report_id: str, n: int, seed: int) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        status = rnd.choice([None, None, "lead", "sale", "funnel"])
        sub = base + timedelta(minutes=rnd.randrange(100_000))
        action = sub + timedelta(minutes=rnd.randrange(10_000)) if status else None
        amount = Decimal(rnd.randrange(0, 100_000)) / 100 if status == "sale" else None
        rows.append({
            "_id": f"{report_id}:{i}", "report_id": report_id, "source_report_id": f"{report_id}-excel", "source": "excel",
            "user_id": Int64(rnd.randrange(n // 2 + 1)), "customer_key": None, "status": status,
            "purchase_amount": None if amount is None else Decimal128(amount),
            "is_premium": rnd.random() < 0.3, "username": rnd.choice([None, "", "nick"]),
            "sub_date": sub, "action_date": action,
            "action_period_ms": None if action is None else Int64(int((action - sub).total_seconds() * 1000)),
        })  # fmt: skip
    rows.append(
        {
            "_id": f"{report_id}:ofd",
            "report_id": report_id,
            "source_report_id": f"{report_id}-ofd",
            "source": "ofd",
            "user_id": None,
            "customer_key": None,
            "status": "revenue",
            "purchase_amount": Decimal128("1234.56"),
        }
    )
    rows.append(
        {
            "_id": f"{report_id}:edz",
            "report_id": report_id,
            "source_report_id": f"{report_id}-eduzz",
            "source": "eduzz",
            "user_id": None,
            "customer_key": "eduzz:c1",
            "status": "sale",
            "purchase_amount": Decimal128("10.00"),
            "action_period_ms": None,
        }
    )
    return rows


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_totals_match_the_reference(db, strategy: str) -> None:
    rows = random_rows("r1", 3000, seed=7)
    await db.sales.insert_many(pack(rows))
    await db.sales.insert_many(pack(random_rows("other", 200, seed=8)))  # must not leak into r1
    # A report's rows are found through its sources.
    await db.source_reports.insert_many(
        [{"_id": f"{r}-{kind}", "report_id": r} for r in ("r1", "other") for kind in ("excel", "ofd", "eduzz")]
    )
    expected = totals_from_rows(rows)
    actual = await AnalyticsRepository(db, strategy).totals("r1")
    assert actual == expected
    assert actual.subs > 1000 and actual.buyers > 0 and actual.profit > 0
    assert compute_metrics(Decimal(777), actual) == compute_metrics(Decimal(777), expected)


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_empty_report_totals_are_zero(db, strategy: str) -> None:
    totals = await AnalyticsRepository(db, strategy).totals("nothing")
    metrics = compute_metrics(Decimal(100), totals)
    assert metrics["subs"] == 0 and metrics["cpc"] is None


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_a_report_of_one_ingested_file_takes_the_totals_ingest_folded(db, strategy: str) -> None:
    rows = random_rows("r1", 500, seed=9)[:-2]  # the Excel rows only
    await db.sales.insert_many(pack(rows))
    folded = totals_from_rows(rows)
    await db.source_reports.insert_one(
        {"_id": "r1-excel", "report_id": "r1", "kind": "excel", "status": "ingested", "totals": to_document(folded)}
    )
    repo = AnalyticsRepository(db, strategy)
    assert await repo.totals("r1") == folded
    # Proof the stored totals are what is read (no scan): change them, and the report follows.
    await db.source_reports.update_one({"_id": "r1-excel"}, {"$set": {"totals.subs": 1}})
    assert (await repo.totals("r1")).subs == 1
    # A second source: distinct users cannot be added up across sources, so the rows are scanned.
    await db.source_reports.insert_one({"_id": "r1-ofd", "report_id": "r1", "kind": "connector", "status": "success"})
    assert await repo.totals("r1") == folded


async def test_a_file_still_being_stored_is_scanned(db) -> None:
    rows = random_rows("r1", 300, seed=10)[:-2]
    await db.sales.insert_many(pack(rows))
    stale = to_document(totals_from_rows(rows[:10]))
    await db.source_reports.insert_one(
        {"_id": "r1-excel", "report_id": "r1", "kind": "excel", "status": "storing", "totals": stale}
    )
    assert await AnalyticsRepository(db, "scan").totals("r1") == totals_from_rows(rows)
