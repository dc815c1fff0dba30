"""A page cut from a listing document (shared/sale_listing.py) is exactly the page the database's
own aggregation gives (reports.listing_pipeline), against the real database, for every order
and direction and the listing's filters alone and combined, over rows with nulls, ties, mixed
scales of amounts, non-ASCII names and `_id`s whose string order is not the row order."""

from __future__ import annotations

import asyncio
import hashlib
import random
from array import array
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate
from typing import Any, Literal

import bson
import pytest
from bson import Binary, Decimal128, Int64
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway import reports
from services.gateway.auth import User
from shared.mongo import COLLECTIONS, LISTING_PARTS_RESIZED, Document, ensure_indexes, resize_listing_parts
from shared.sale_chunks import CHUNK_FIELDS, CHUNK_MATCH_FIELDS, count_pipeline, pack
from shared.sale_listing import (
    FORMER_PART_ROWS,
    LISTING_PART_ROWS,
    ORDER_FIELDS,
    build_listings,
    listing_id,
    listing_part_id,
)
from shared.sale_row_json import sale_row_json
from shared.sale_rows import ORDERABLE_FIELDS
from shared.settings import Settings

CHANNEL = -1001
ALICE, MALLORY = User(1, "alice"), User(2, "mallory")
DAY0 = datetime(2024, 3, 1, tzinfo=UTC)
NAMES = ("Ёжик", "émile", "Zed", "zed", "", "Anna", None, "anna", "Ωmega", "日本")
AMOUNTS = ("10.0", "10.00", "9.99", "-5", "1000", "0", "0.001", "250.50", None)
PRODUCTS = ("Course A", "Course B", "Курс", None)


def photo_url(i: int) -> str:
    """A Telegram CDN picture address, as long as real ones are."""
    return f"https://cdn4.telesco.pe/file/{hashlib.sha512(str(i).encode()).hexdigest()}.jpg"


def file_rows(n: int, seed: int = 7) -> list[Document]:
    rnd = random.Random(seed)
    rows: list[Document] = []
    for i in range(n):
        status = rnd.choice(("sale", "sale", "lead", "funnel", None))
        sub = DAY0 + timedelta(hours=rnd.randrange(24 * 30), milliseconds=rnd.choice((0, 1, 999)))
        action = sub + timedelta(hours=rnd.randrange(1, 200)) if rnd.random() < 0.7 else None
        amount = rnd.choice(AMOUNTS)
        rows.append({
            "_id": f"src:{i + 2}", "report_id": "r", "source_report_id": "src", "channel_id": Int64(CHANNEL),
            "creator_id": ALICE.id, "source": "excel", "row": i + 2,
            "user_id": Int64(rnd.randrange(50)) if rnd.random() < 0.9 else None, "customer_key": None,
            "name": rnd.choice(NAMES), "product": rnd.choice(PRODUCTS), "username": rnd.choice(("u1", "U1", None)),
            "photo_url": photo_url(i), "phone_number": None, "invite_link": rnd.choice(("https://t.me/+a", None)),
            "is_premium": rnd.random() < 0.4, "birthdate": None, "status": status,
            "purchase_amount": None if amount is None else Decimal128(Decimal(amount)), "currency": "RUB",
            "sub_date": sub, "unsub_date": sub + timedelta(days=3) if rnd.random() < 0.3 else None,
            "action_date": action,
            "action_period_ms": Int64(int((action - sub).total_seconds() * 1000)) if action else None,
            "extra": None,
        })  # fmt: skip
    return rows


@pytest.fixture
async def stored(db: AsyncDatabase[Document]) -> list[Document]:
    await ensure_indexes(db)
    rows = file_rows(3_200)  # its sales span six parts of their listing (LISTING_PART_ROWS)
    chunks = pack(rows)
    listings = build_listings(chunks)
    assert {d["status"] for d in listings} == {"sale", "lead", "funnel"}  # never the subscribers
    assert listing_part_id("src", "sale", 1) in {d["_id"] for d in listings}
    # Both kinds of key, so that every test below reads both: the sales' (≈ 610 KiB of rows' JSON)
    # holds none, the leads' (≈ 300 KiB) holds its rows (KEY_ROWS_MAX_BYTES).
    keys = {d["status"]: d["listing"] for d in listings if "listing" in d}
    assert "rows" not in keys["sale"] and "rows" in keys["lead"]
    await db[COLLECTIONS.sales].insert_many([*chunks, *listings])
    return rows


FILTERS: list[dict[str, Any]] = [
    {},
    {"product": "Course A"},
    {"product": "Курс"},
    {"product": "nothing of the kind"},
    {"is_premium": True},
    {"is_premium": False},
    {"is_null_invite_link": True},
    {"is_null_invite_link": False},
    {"start_date": DAY0 + timedelta(days=5, microseconds=999_500), "end_date": DAY0 + timedelta(days=12)},
    {"start_date": DAY0 + timedelta(days=20)},
    {"end_date": DAY0 + timedelta(days=3, hours=5)},
    {"product": "Course B", "is_premium": False, "start_date": DAY0 + timedelta(days=2)},
]


def exact_bounds(rows: list[Document], status: str) -> list[dict[str, Any]]:
    """Periods whose bounds are some rows' own dates, to the millisecond: both bounds include."""
    mine = [r for r in rows if r["status"] == status]
    acted = sorted(r["action_date"] for r in mine if r["action_date"] is not None)
    subbed = sorted(r["sub_date"] for r in mine if r["action_date"] is None)
    return [
        {"start_date": acted[5], "end_date": acted[40]},
        {"start_date": subbed[3], "end_date": subbed[3]},
        {"start_date": acted[10], "end_date": acted[10]},
    ]


def query_of(status: str, user: User, f: dict[str, Any]) -> Document:
    query = reports.sales_query(
        "src", status, f.get("product"), f.get("is_premium"), f.get("start_date"), f.get("end_date"),
        f.get("is_null_invite_link"),
    )  # fmt: skip
    return reports.owned(query, user, CHANNEL)


async def aggregated(
    db: AsyncDatabase[Document], query: Document, order_by: str | None, order_dir: Literal["asc", "desc"],
    limit: int, offset: int,
) -> list[bytes]:  # fmt: skip
    pipeline = reports.listing_pipeline(query, order_by, order_dir, limit, offset)
    return [sale_row_json(d) async for d in await db[COLLECTIONS.sales].aggregate(pipeline)]


@pytest.mark.parametrize("status", ["sale", "lead"])
async def test_every_order_and_filter_gives_the_aggregations_page(
    db: AsyncDatabase[Document], stored: list[Document], status: str
) -> None:
    rnd = random.Random(status)
    checked = 0
    for f in [*FILTERS, *exact_bounds(stored, status)]:
        for order_by in (None, *ORDERABLE_FIELDS):
            for order_dir in ("asc", "desc"):
                limit, offset = rnd.choice(((10, 0), (7, 13), (1000, 0), (5, 400), (3, 95), (20, 990), (50, 1020)))
                query = query_of(status, ALICE, f)
                chunk_match = {k: v for k, v in query.items() if k in CHUNK_MATCH_FIELDS}
                row_match = {k: v for k, v in query.items() if k not in chunk_match}
                cut = await reports.listed_page(db, chunk_match, row_match, order_by, order_dir, limit, offset)
                assert cut is not None, "the listing answers every filter the API has"
                expected = await aggregated(db, query, order_by, order_dir, limit, offset)
                assert cut == expected, (f, order_by, order_dir, limit, offset)
                listed = await reports.list_sales(db, query, order_by, order_dir, limit, offset)
                assert listed == expected
                checked += bool(expected)
    # Most pages hold rows (offsets past a small filter's end give some empty ones): not a comparison
    # of empty lists.
    assert checked > len(FILTERS) * (len(ORDERABLE_FIELDS) + 1)


async def test_the_listing_is_not_a_row_and_goes_with_its_source(
    db: AsyncDatabase[Document], stored: list[Document]
) -> None:
    counted = await (await db[COLLECTIONS.sales].aggregate(count_pipeline({"source_report_id": "src"}))).to_list()
    assert counted == [{"rows": len(stored)}]
    listing = await db[COLLECTIONS.sales].find_one({"_id": listing_id("src", "sale")})
    assert listing is not None and listing["rows"] == [] and "seq" not in listing
    part = await db[COLLECTIONS.sales].find_one({"_id": listing_part_id("src", "sale", 0)})
    assert part is not None and part["rows"] == [] and "seq" not in part
    assert {f: listing[f] for f in CHUNK_FIELDS} == {f: stored[0][f] for f in CHUNK_FIELDS}
    assert listing["listing"]["n"] == sum(r["status"] == "sale" for r in stored)
    assert set(listing["listing"]["order"]) == set(ORDER_FIELDS.values())
    await db[COLLECTIONS.sales].delete_many({"source_report_id": "src"})
    assert await db[COLLECTIONS.sales].count_documents({}) == 0


async def test_another_users_query_is_not_answered_from_the_listing(
    db: AsyncDatabase[Document], stored: list[Document]
) -> None:
    query = query_of("sale", MALLORY, {"product": "Course A"})
    chunk_match = {k: v for k, v in query.items() if k in CHUNK_MATCH_FIELDS}
    row_match = {k: v for k, v in query.items() if k not in chunk_match}
    assert await reports.listed_page(db, chunk_match, row_match, "purchase_amount", "asc", 50, 0) is None
    assert await reports.list_sales(db, query, "purchase_amount", "asc", 50, 0) == []
    # Parts and chunks are looked up by `_id` and owned in the gateway: a default page, by another
    # user or in another channel, gets no row of them.
    assert await reports.list_sales(db, query_of("sale", ALICE, {}), None, "asc", 50, 0) != []
    assert await reports.list_sales(db, query_of("sale", MALLORY, {}), None, "asc", 50, 0) == []
    elsewhere = {**query_of("sale", ALICE, {}), "channel_id": Int64(CHANNEL - 1)}
    assert await reports.list_sales(db, elsewhere, None, "asc", 50, 0) == []
    assert await reports.list_sales(db, {**elsewhere, "product": {"$eq": "Course A"}}, "user_id", "asc", 50, 0) == []


@pytest.mark.parametrize(("status", "reads"), [("lead", 1), ("sale", 2)])
async def test_a_filtered_page_of_a_small_status_is_one_read(
    settings: Settings, stored: list[Document], status: str, reads: int
) -> None:
    commands = CommandLog()
    client: AsyncMongoClient[Document] = AsyncMongoClient(settings.mongo_url, tz_aware=True, event_listeners=[commands])
    try:
        db = client[settings.mongo_db]
        query = query_of(status, ALICE, {"product": "Course A"})
        page = await reports.list_sales(db, query, "purchase_amount", "desc", 20, 5)
        assert commands.names == ["find"] * reads  # the key, then (unless it holds the rows) the parts
        assert page == await aggregated(db, query, "purchase_amount", "desc", 20, 5) and len(page) == 20
    finally:
        await client.close()


class CommandLog(monitoring.CommandListener):
    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_parts_written_with_another_size_are_never_read_as_these(
    db: AsyncDatabase[Document], stored: list[Document]
) -> None:
    # Parts of 1 000 rows, as written before LISTING_PART_ROWS changed, under their old ids; the
    # parts of today's size are gone. Every page must still be the source's own rows (from the
    # chunks), never rows cut from a part of another size.
    sales = db[COLLECTIONS.sales]
    query = query_of("sale", ALICE, {})
    expected = await aggregated(db, query, None, "asc", 20, 990)
    old = [d async for d in sales.find({"listing_part": {"$exists": True}, "status": "sale"})]
    await sales.delete_many({"_id": {"$in": [d["_id"] for d in old]}})
    for n, first in enumerate(range(0, len(old), -(-1_000 // LISTING_PART_ROWS))):
        await sales.insert_one(
            {**old[first], "_id": f"src:sale:listing:{n}", "listing_part": {**old[first]["listing_part"], "part": n}}
        )
    assert await reports.list_sales(db, query, None, "asc", 20, 990) == expected
    assert await reports.list_sales(db, query, "user_id", "asc", 20, 5) == await aggregated(
        db, query, "user_id", "asc", 20, 5
    )


def former_layout(parts: list[Document]) -> list[Document]:
    """Today's parts of one status as an older release stored them: FORMER_PART_ROWS rows a part,
    under ids without the size."""
    per = FORMER_PART_ROWS // LISTING_PART_ROWS
    ordered = sorted(parts, key=lambda p: p["listing_part"]["part"])
    formers: list[Document] = []
    for n in range(0, len(ordered), per):
        group = ordered[n : n + per]
        rows, ends, offset = b"", array("I"), 0
        for part in group:
            part_ends = array("I", bytes(part["listing_part"]["ends"]))
            ends.extend(end + offset for end in part_ends)
            rows += bytes(part["listing_part"]["rows"])
            offset += part_ends[-1]
        number = n // per
        first = group[0]
        formers.append({
            **{k: v for k, v in first.items() if k not in ("_id", "listing_part")},
            "_id": f"{first['source_report_id']}:{first['status']}:listing:{number}",
            "listing_part": {"part": number, "rows": Binary(rows), "ends": Binary(ends.tobytes()),
                             **({"json": first["listing_part"]["json"]} if "json" in first["listing_part"] else {})},
        })  # fmt: skip
    return formers


async def test_parts_stored_by_an_older_release_are_cut_to_todays_size_at_start_up(
    db: AsyncDatabase[Document], stored: list[Document], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("shared.mongo.MIGRATION_BATCH_BYTES", 1)  # a batch per part: the bound is exercised
    sales = db[COLLECTIONS.sales]
    today = sorted([d async for d in sales.find({"listing_part": {"$exists": True}})], key=lambda d: str(d["_id"]))
    by_status: dict[str, list[Document]] = {}
    for part in today:
        by_status.setdefault(part["status"], []).append(part)
    formers = [former for parts in by_status.values() for former in former_layout(parts)]
    assert len(formers) < len(today)  # 3 200 rows: parts of 1 000 are fewer
    await sales.delete_many({"_id": {"$in": [d["_id"] for d in today]}})
    await sales.insert_many(formers)
    await db[COLLECTIONS.migrations].delete_many({"_id": LISTING_PARTS_RESIZED})

    # Two services starting at once: both cut, neither fails, the parts are today's, once each.
    counted = await asyncio.gather(resize_listing_parts(db), resize_listing_parts(db))
    assert max(counted) > 0
    after = sorted([d async for d in sales.find({"listing_part": {"$exists": True}})], key=lambda d: str(d["_id"]))
    assert after == today
    assert await resize_listing_parts(db) == 0  # done: the marker says so
    query = query_of("sale", ALICE, {})
    assert await reports.list_sales(db, query, None, "asc", 20, 990) == await aggregated(
        db, query, None, "asc", 20, 990
    )


def held_as_bson(held: Document, rows: list[Document]) -> Document:
    """Rows held as a release before 2026-12-07 held them: each row's BSON as in its chunk, no `json`."""
    encoded = [bson.encode(row) for row in rows]
    ends = array("I", accumulate(len(row) for row in encoded))
    rest = {k: v for k, v in held.items() if k not in ("rows", "ends", "json")}
    return {**rest, "rows": Binary(b"".join(encoded)), "ends": Binary(ends.tobytes())}


async def test_a_listing_held_as_bson_by_an_earlier_release_gives_the_same_pages(
    db: AsyncDatabase[Document], stored: list[Document]
) -> None:
    sales = db[COLLECTIONS.sales]
    for status in ("sale", "lead"):
        mine = [row for row in stored if row["status"] == status]  # row order within the status
        key = await sales.find_one({"_id": listing_id("src", status)})
        assert key is not None
        if "rows" in key["listing"]:
            await sales.replace_one({"_id": key["_id"]}, {**key, "listing": held_as_bson(key["listing"], mine)})
        async for part in sales.find({"listing_part": {"$exists": True}, "status": status}):
            first = int(part["listing_part"]["part"]) * LISTING_PART_ROWS
            earlier = held_as_bson(part["listing_part"], mine[first : first + LISTING_PART_ROWS])
            await sales.replace_one({"_id": part["_id"]}, {**part, "listing_part": earlier})
        assert await sales.count_documents({"status": status, "listing_part.json": {"$exists": True}}) == 0
        for f, order_by, limit, offset in (({}, None, 50, 240), ({"is_premium": True}, "purchase_amount", 20, 5)):
            query = query_of(status, ALICE, f)
            expected = await aggregated(db, query, order_by, "desc" if order_by else "asc", limit, offset)
            assert len(expected) == limit
            assert (
                await reports.list_sales(db, query, order_by, "desc" if order_by else "asc", limit, offset) == expected
            )
