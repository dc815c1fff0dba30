"""reports.report_view against the real database: the caller's report with its own sources, oldest
first (ties by id), in one read; someone else's report or a missing one is None."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bson import Decimal128, Int64
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User
from services.gateway.reports import report_view
from shared.mongo import COLLECTIONS, Document, ensure_indexes

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def source(sr_id: str, report_id: str, minutes: int, **fields: object) -> Document:
    return {"_id": sr_id, "report_id": report_id, "created_at": T0 + timedelta(minutes=minutes), **fields}


async def test_the_report_comes_with_its_sources_oldest_first(db: AsyncDatabase[Document]) -> None:
    await ensure_indexes(db)
    await db[COLLECTIONS.reports].insert_many(
        [
            {"_id": "mine", "creator_id": 1, "channel_id": Int64(-1001), "name": "Spring", "status": "success",
             "budget": Decimal128("1000"), "created_at": T0, "profit": Decimal128("12.5"), "subs": 4},
            {"_id": "theirs", "creator_id": 2, "channel_id": Int64(-1001), "name": "Other", "status": "success",
             "budget": Decimal128("1"), "created_at": T0},
        ]
    )  # fmt: skip
    await db[COLLECTIONS.source_reports].insert_many(
        [
            source("c-late", "mine", 30, kind="connector", source="eduzz", status="success", progress={"sales": 7}),
            source("b-first", "mine", 0, name="spring.xlsx", status="ingested", rows=6),
            source("a-tie", "mine", 0, name="extra.xlsx", status="ingested", rows=2),
            source("x-other", "theirs", 0, name="theirs.xlsx", rows=1),
        ]
    )

    view = await report_view(db, User(1, "alice"), "mine")

    assert view is not None
    assert view["id"] == "mine" and view["channel_id"] == -1001 and view["subs"] == 4
    assert str(view["profit"]) == "12.5" and str(view["budget"]) == "1000"
    assert [(s["id"], s["name"], s["rows"]) for s in view["source_reports"]] == [
        ("a-tie", "extra.xlsx", 2),
        ("b-first", "spring.xlsx", 6),
        ("c-late", "eduzz", 7),
    ]
    assert await report_view(db, User(1, "alice"), "theirs") is None
    assert await report_view(db, User(2, "mallory"), "mine") is None
    assert await report_view(db, User(1, "alice"), "missing") is None
