"""The sales listing with a period, against the real database: the rows whose action_date (or
sub_date, for rows without one) falls in the period, of that source and owner only, in the asked
order and page. The period is matched after the indexed equalities (see reports.list_sales)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pytest
from bson import Int64
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway import reports
from services.gateway.auth import User
from shared.mongo import COLLECTIONS, Document, ensure_indexes
from shared.sale_chunks import pack, single
from shared.sale_listing import build_listings
from shared.sale_row_json import utc_text

CHANNEL = -1001
DAY0 = datetime(2024, 1, 1, tzinfo=UTC)
START, END = DAY0 + timedelta(days=10), DAY0 + timedelta(days=20)
ALICE, MALLORY = User(1, "alice"), User(2, "mallory")


def row(n: int, *, source: str = "s", creator: int = 1, status: str = "sale") -> Document:
    """Row n: sub_date on day n; every third row has an action_date two days later, which is the
    date the period looks at."""
    action = DAY0 + timedelta(days=n + 2) if n % 3 == 0 else None
    return {
        "_id": f"{source}:{n}",
        "source_report_id": source,
        "creator_id": creator,
        "channel_id": Int64(CHANNEL),
        "row": n,
        "status": status,
        "user_id": Int64(1000 + (n * 7) % 31),  # an order unrelated to row
        "sub_date": DAY0 + timedelta(days=n),
        "action_date": action,
    }


def in_period(doc: Document) -> bool:
    moment = doc["action_date"] or doc["sub_date"]
    return bool(START <= moment <= END)


@pytest.fixture(params=[False, True], ids=["aggregation", "listing"])
async def rows(db: AsyncDatabase[Document], request: pytest.FixtureRequest) -> list[Document]:
    """Every test runs on chunks alone (the aggregation) and with the listing documents ingest
    writes beside an Excel source's chunks (pages cut from them)."""
    await ensure_indexes(db)
    mine = [row(n) for n in range(30)]
    chunks = [
        *pack([*mine, *(row(n, status="lead") | {"_id": f"l:{n}"} for n in range(30))], chunk_rows=7),
        *pack([row(n, source="other") for n in range(30)]),
    ]
    listings = build_listings(chunks) if request.param else []
    assert len(listings) == (6 if request.param else 0)  # three statuses: a key and a part each
    await db[COLLECTIONS.sales].insert_many(
        [
            *chunks,
            *listings,
            # Someone else's rows under the same source id: chunks of one, which ids cannot collide.
            *(single(row(n, source="s", creator=2) | {"_id": f"m:{n}"}) for n in range(30)),
        ]
    )
    return mine


@pytest.mark.parametrize(
    ("order_by", "order_dir", "limit", "offset"),
    [(None, "asc", 50, 0), (None, "desc", 3, 2), ("user_id", "asc", 4, 1), ("sub_date", "desc", 50, 0)],
)
async def test_a_period_lists_its_rows_in_order_and_page(
    db: AsyncDatabase[Document],
    rows: list[Document],
    order_by: str | None,
    order_dir: Literal["asc", "desc"],
    limit: int,
    offset: int,
) -> None:
    query = reports.sales_query("s", "sale", None, None, START, END, None)
    page = await reports.list_sales(db, reports.owned(query, ALICE, CHANNEL), order_by, order_dir, limit, offset)
    listed = [json.loads(r) for r in page]

    field = reports.SALE_ORDER_FIELDS[order_by] if order_by else "row"
    expected = sorted(
        (d for d in rows if in_period(d)), key=lambda d: (d[field], d["_id"]), reverse=order_dir == "desc"
    )[offset : offset + limit]
    assert expected, "the fixture must put rows in the period"
    assert [r["user_id"] for r in listed] == [int(d["user_id"]) for d in expected]
    assert [r["sub_date"] for r in listed] == [utc_text(d["sub_date"]) for d in expected]


async def test_a_period_never_reaches_another_source_or_owner(db: AsyncDatabase[Document], rows: Any) -> None:
    query = reports.sales_query("s", "sale", None, None, START, END, None)
    assert await reports.list_sales(db, reports.owned(query, MALLORY, CHANNEL), None, "asc", 50, 0) != []
    everything = await reports.list_sales(db, reports.owned(query, ALICE, CHANNEL), None, "asc", 50, 0)
    other = reports.sales_query("other", "sale", None, None, START, END, None)
    from_other = await reports.list_sales(db, reports.owned(other, ALICE, CHANNEL), None, "asc", 50, 0)
    assert len(everything) == len(from_other) == sum(in_period(d) for d in rows)
    none_in = reports.sales_query("s", "sale", None, None, END + timedelta(days=30), None, None)
    assert await reports.list_sales(db, reports.owned(none_in, ALICE, CHANNEL), None, "asc", 50, 0) == []
