"""The sales listing's pages against the real database: the default page is cut from the chunks
that hold it (looked up by `_id`), every other order or filter unwinds the source's chunks, and
both give the rows of that source, status and owner only, in order (see reports.list_sales)."""

from __future__ import annotations

import json
from typing import Literal

import pytest
from bson import Int64
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway import reports
from services.gateway.auth import User
from shared.mongo import COLLECTIONS, Document, ensure_indexes
from shared.sale_chunks import CHUNK_ROWS, pack, single
from shared.sale_listing import build_listings

CHANNEL = -1001
ALICE, MALLORY = User(1, "alice"), User(2, "mallory")
SALES = 2 * CHUNK_ROWS + 50


def row(n: int, *, source: str = "s", status: str = "sale", creator: int = 1) -> Document:
    return {
        "_id": f"{source}:{n}",
        "source_report_id": source,
        "creator_id": creator,
        "channel_id": Int64(CHANNEL),
        "source": "excel",
        "row": n,
        "status": status,
        "user_id": Int64(10_000 + (n * 37) % 1009),
        "product": "A" if n % 2 else "B",
    }


@pytest.fixture(params=[False, True], ids=["aggregation", "listing"])
async def sales(db: AsyncDatabase[Document], request: pytest.FixtureRequest) -> list[Document]:
    """Every test runs twice: on chunks alone (pages from the aggregation) and with the listing
    documents ingest writes beside an Excel source's chunks (pages cut from them)."""
    await ensure_indexes(db)
    # Sales and leads interleaved in the file, as uploads have them.
    file_rows = [row(n, status="sale" if n % 3 else "lead") for n in range(2, 2 + SALES * 3 // 2 + 1)]
    mine = [r for r in file_rows if r["status"] == "sale"][:SALES]
    file_rows = [r for r in file_rows if r["status"] == "lead" or r in mine]
    connector = [row(0, source="c") | {"_id": f"c:{ext}", "row": None, "source": "eduzz"} for ext in ("b2", "a1", "c3")]
    chunks = [*pack(file_rows), *pack([row(n, source="other") for n in range(2, 40)])]
    listings = build_listings(chunks) if request.param else []
    assert len(listings) == (6 if request.param else 0)  # s: sale and lead; other: sale; a key and a part each
    await db[COLLECTIONS.sales].insert_many([*chunks, *listings, *map(single, connector)])
    assert len(mine) == SALES
    return mine


async def page(
    db: AsyncDatabase[Document],
    user: User,
    *,
    source: str = "s",
    order_by: str | None = None,
    order_dir: Literal["asc", "desc"] = "asc",
    limit: int = 10,
    offset: int = 0,
    product: str | None = None,
) -> list[int]:
    query = reports.owned(reports.sales_query(source, "sale", product, None, None, None, None), user, CHANNEL)
    listed = await reports.list_sales(db, query, order_by, order_dir, limit, offset)
    return [int(json.loads(r)["user_id"] or 0) for r in listed]


def ids(rows: list[Document]) -> list[int]:
    return [int(r["user_id"]) for r in rows]


@pytest.mark.parametrize(
    ("offset", "limit"),
    [(0, 10), (CHUNK_ROWS - 5, 10), (CHUNK_ROWS, 10), (0, CHUNK_ROWS * 2 + 7), (SALES - 3, 10), (SALES, 10)],
)
async def test_default_pages_are_the_rows_in_file_order(
    db: AsyncDatabase[Document], sales: list[Document], offset: int, limit: int
) -> None:
    assert await page(db, ALICE, offset=offset, limit=limit) == ids(sales[offset : offset + limit])


@pytest.mark.parametrize(
    ("order_by", "order_dir", "product"), [(None, "desc", None), ("user_id", "asc", None), (None, "asc", "A")]
)
async def test_other_orders_and_filters_see_every_row_of_the_source(
    db: AsyncDatabase[Document],
    sales: list[Document],
    order_by: str | None,
    order_dir: Literal["asc", "desc"],
    product: str | None,
) -> None:
    field = order_by or "row"
    expected = sorted(
        (r for r in sales if product is None or r["product"] == product),
        key=lambda r: (r[field], r["_id"]),
        reverse=order_dir == "desc",
    )[CHUNK_ROWS - 3 : CHUNK_ROWS + 7]
    listed = await page(
        db, ALICE, order_by=order_by, order_dir=order_dir, product=product, offset=CHUNK_ROWS - 3, limit=10
    )
    assert listed == ids(expected)


async def test_someone_elses_rows_are_never_listed(db: AsyncDatabase[Document], sales: list[Document]) -> None:
    assert await page(db, MALLORY) == []
    assert await page(db, MALLORY, order_by="user_id") == []


async def test_rows_stored_one_by_one_page_by_id(db: AsyncDatabase[Document], sales: list[Document]) -> None:
    # A connector's rows have no row number: the order falls to their ids (a1, b2, c3).
    listed = await reports.list_sales(
        db, reports.owned(reports.sales_query("c", "sale", None, None, None, None, None), ALICE, CHANNEL), None,
        "asc", 2, 1,
    )  # fmt: skip
    assert [json.loads(r)["user_id"] for r in listed] == [10_000, 10_000]
    assert len(await page(db, ALICE, source="c", limit=10)) == 3


def docs_examined(explained: object) -> int:
    """The largest `totalDocsExamined` of the server's explain output, wherever it puts it (the
    shape varies by server, and the figure may be repeated in a summary)."""
    if isinstance(explained, dict):
        if "totalDocsExamined" in explained:
            return int(explained["totalDocsExamined"])
        return max((docs_examined(value) for value in explained.values()), default=0)
    if isinstance(explained, list):
        return max((docs_examined(value) for value in explained), default=0)
    return 0


@pytest.mark.parametrize(("order_by", "product"), [("user_id", None), (None, "A")])
async def test_a_filtered_or_ordered_page_reads_only_its_source_and_status(
    db: AsyncDatabase[Document], sales: list[Document], order_by: str | None, product: str | None
) -> None:
    # The collection also holds this source's leads, another source and a connector's rows: a
    # plan that scans the collection (SecantusDB's, when the ownership shared the index's $match)
    # reads those too, and each chunk it decodes costs the database CPU.
    query = reports.owned(reports.sales_query("s", "sale", product, None, None, None, None), ALICE, CHANNEL)
    pipeline = reports.listing_pipeline(query, order_by, "asc", 10, 5)
    explained = await db.command("explain", {"aggregate": COLLECTIONS.sales, "pipeline": pipeline, "cursor": {}})
    own_chunks = await db[COLLECTIONS.sales].count_documents({"source_report_id": "s", "status": "sale"})
    assert own_chunks < await db[COLLECTIONS.sales].count_documents({})
    assert docs_examined(explained) == own_chunks
