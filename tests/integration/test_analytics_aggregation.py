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

LINKS = [None, "https://t.me/+a", "https://t.me/+b", "https://t.me/+c"]


def random_rows(report_id: str, n: int, seed: int, source: str = "excel") -> list[dict]:
    """Excel rows of one source with every field the totals read: users with several rows, ties on
    sub_date (whole hours), unsubscribes, links, three currencies and rows stored without one."""
    rnd = random.Random(seed)
    rows = []
    base = datetime(2024, 1, 1, tzinfo=UTC)
    for i in range(n):
        status = rnd.choice([None, None, "lead", "sale", "funnel"])
        sub = base + timedelta(hours=rnd.randrange(24 * 60))
        action = sub + timedelta(minutes=rnd.randrange(10_000)) if status and rnd.random() < 0.8 else None
        unsub = sub + timedelta(days=rnd.choice([0, 1, 1, 6, 7, 29, 30, 45])) if rnd.random() < 0.4 else None
        amount = Decimal(rnd.randrange(0, 100_000)) / 100 if status == "sale" else None
        currency = rnd.choice(["RUB", "RUB", "BRL", "USD", None])
        rows.append({
            "_id": f"{report_id}:{source}:{i}", "report_id": report_id, "source_report_id": f"{report_id}-{source}",
            "source": "excel", "row": i + 2,
            "user_id": Int64(rnd.randrange(n // 2 + 1)), "customer_key": None, "status": status,
            "purchase_amount": None if amount is None else Decimal128(amount),
            **({} if currency is None else {"currency": currency}),
            "is_premium": rnd.random() < 0.3, "username": rnd.choice([None, "", "nick"]),
            "invite_link": rnd.choice(LINKS),
            "sub_date": sub, "unsub_date": unsub, "action_date": action,
            "action_period_ms": None if action is None else Int64(int((action - sub).total_seconds() * 1000)),
        })  # fmt: skip
    return rows


def connector_rows(report_id: str) -> list[dict]:
    common = {"report_id": report_id, "user_id": None, "action_period_ms": None}
    return [
        {**common, "_id": f"{report_id}:ofd", "source_report_id": f"{report_id}-ofd", "source": "ofd",
         "customer_key": None, "status": "revenue", "purchase_amount": Decimal128("1234.56"), "currency": "RUB"},
        {**common, "_id": f"{report_id}:edz", "source_report_id": f"{report_id}-eduzz", "source": "eduzz",
         "customer_key": "eduzz:c1", "status": "sale", "purchase_amount": Decimal128("10.00"), "currency": "BRL",
         "invite_link": "https://t.me/+a"},
        {**common, "_id": f"{report_id}:edz2", "source_report_id": f"{report_id}-eduzz", "source": "eduzz",
         "customer_key": "eduzz:c1", "status": "sale", "purchase_amount": Decimal128("5.00"), "currency": "BRL",
         "invite_link": "https://t.me/+zz"},
        # a platform sale by an Excel user (same user_id) under its own link, and a lead without link
        {**common, "_id": f"{report_id}:sc", "source_report_id": f"{report_id}-eduzz", "source": "sweetclub",
         "user_id": Int64(3), "customer_key": None, "status": "sale", "purchase_amount": Decimal128("7.00"),
         "invite_link": "https://t.me/+b"},
        {**common, "_id": f"{report_id}:lead", "source_report_id": f"{report_id}-eduzz", "source": "eduzz",
         "customer_key": "eduzz:c2", "status": "lead", "purchase_amount": None, "currency": "BRL"},
    ]  # fmt: skip


SOURCE_KINDS = ("excel", "excel2", "ofd", "eduzz")


async def store_report(db, report_id: str, n: int, seed: int) -> list[dict]:
    rows = [
        *random_rows(report_id, n, seed),
        *random_rows(report_id, n // 3, seed + 1, "excel2"),
        *connector_rows(report_id),
    ]
    await db.sales.insert_many(pack(rows))
    created = datetime(2024, 6, 1, tzinfo=UTC)
    await db.source_reports.insert_many(
        [{"_id": f"{report_id}-{kind}", "report_id": report_id, "created_at": created + timedelta(minutes=i)}
         for i, kind in enumerate(SOURCE_KINDS)]
    )  # fmt: skip
    return rows


SOURCE_ORDER = {f"r1-{kind}": i for i, kind in enumerate(SOURCE_KINDS)}


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_totals_match_the_reference(db, strategy: str) -> None:
    rows = await store_report(db, "r1", 3000, seed=7)
    await store_report(db, "other", 200, seed=8)  # must not leak into r1
    expected = totals_from_rows(rows, "RUB", SOURCE_ORDER)
    actual = await AnalyticsRepository(db, strategy).totals("r1", "RUB")
    assert actual == expected
    assert actual.subs > 1000 and actual.buyers > 0 and set(actual.revenue) == {"RUB", "BRL", "USD"}
    assert actual.unsubs > 0 and actual.as_of is not None and actual.retention_kept[30] > 0
    assert {link.invite_link for link in actual.links} == {*LINKS, "https://t.me/+zz"}
    # The links add up to the report.
    assert sum(link.subs for link in actual.links) == actual.subs
    assert sum(link.sales for link in actual.links) == actual.counts["sale"]
    for code, amount in actual.revenue.items():
        assert sum(link.revenue.get(code, 0) for link in actual.links) == amount
    rates = {"BRL": Decimal("16.2"), "USD": Decimal("95")}
    assert compute_metrics(Decimal(777), actual, exchange_rates=rates) == compute_metrics(
        Decimal(777), expected, exchange_rates=rates
    )


async def test_rows_without_currency_are_in_the_reports_currency(db) -> None:
    rows = await store_report(db, "r1", 300, seed=11)
    for strategy in ("aggregate", "scan"):
        totals = await AnalyticsRepository(db, strategy).totals("r1", "EUR")
        assert totals == totals_from_rows(rows, "EUR", SOURCE_ORDER)
        assert "EUR" in totals.revenue


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_empty_report_totals_are_zero(db, strategy: str) -> None:
    totals = await AnalyticsRepository(db, strategy).totals("nothing")
    metrics = compute_metrics(Decimal(100), totals).fields
    assert metrics["subs"] == 0 and metrics["cpc"] is None and metrics["retention_d1"] is None
    assert totals.links == ()


@pytest.mark.parametrize("strategy", ["aggregate", "scan"])
async def test_a_report_of_one_ingested_file_takes_the_totals_ingest_folded(db, strategy: str) -> None:
    rows = random_rows("r1", 500, seed=9)
    await db.sales.insert_many(pack(rows))
    folded = totals_from_rows(rows, "RUB", {"r1-excel": 0})
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
    rows = random_rows("r1", 300, seed=10)
    await db.sales.insert_many(pack(rows))
    stale = to_document(totals_from_rows(rows[:10]))
    await db.source_reports.insert_one(
        {"_id": "r1-excel", "report_id": "r1", "kind": "excel", "status": "storing", "totals": stale}
    )
    assert await AnalyticsRepository(db, "scan").totals("r1") == totals_from_rows(rows, "RUB", {"r1-excel": 0})


async def test_totals_an_older_release_stored_are_not_used(db) -> None:
    rows = random_rows("r1", 300, seed=12)
    await db.sales.insert_many(pack(rows))
    old = {"subs": 1, "premium_users": 0, "username_users": 0, "buyers": 0, "counts": {}, "profit": Decimal128("1")}
    await db.source_reports.insert_one(
        {"_id": "r1-excel", "report_id": "r1", "kind": "excel", "status": "ingested", "totals": old}
    )
    assert await AnalyticsRepository(db, "scan").totals("r1") == totals_from_rows(rows, "RUB", {"r1-excel": 0})
