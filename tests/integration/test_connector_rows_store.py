"""The connectors' rows store against the real database: a listing's new rows are inserted,
unchanged ones not written, changed ones replaced and marked pending again; a row stored by
someone else between our read and our insert is replaced with this listing's state, not lost."""

from __future__ import annotations

from decimal import Decimal

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.platforms.base.rows import RowContext
from services.connectors.platforms.sweetclub.models import SaleListItem
from services.connectors.platforms.sweetclub.rows import listing_row
from services.connectors.sync.rows_store import RowsStore, listing_hash
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import rows_pipeline, single

CTX = RowContext("r1", "s1", -100123, 7, "c1", "Europe/Moscow", "RUB")


def row(sale_id: int, total: int = 400, status: str = "1") -> dict[str, object]:
    item = {"sale_id": str(sale_id), "name": "Безе", "total": total, "currency_code": "RUB",
            "date_added": "2024-01-05 18:57:36", "status": status}  # fmt: skip
    return listing_row(CTX, SaleListItem.model_validate(item))


async def stored(db: AsyncDatabase[Document]) -> dict[str, tuple[str, Decimal, bool]]:
    docs = {d["_id"]: d async for d in db[COLLECTIONS.sales].find({})}
    rows = {r["_id"]: r async for r in await db[COLLECTIONS.sales].aggregate(rows_pipeline({}))}
    return {
        k: (str(rows[k]["status"]), rows[k]["purchase_amount"].to_decimal(), bool(docs[k].get("enrich_pending")))
        for k in rows
    }


async def test_new_rows_inserted_unchanged_skipped_changed_replaced(db: AsyncDatabase[Document]) -> None:
    store = RowsStore(db)
    assert await store.store_listing([row(i) for i in range(1, 6)], enrich=True) == 5
    assert await store.store_listing([row(i) for i in range(1, 6)], enrich=True) == 0
    # Enriched since: an unchanged listing must not undo it.
    await db[COLLECTIONS.sales].update_one({"_id": "s1:1"}, {"$unset": {"enrich_pending": ""}})
    page = [row(1), row(2, status="0"), row(3, total=401), row(6), row(6, total=402)]
    assert await store.store_listing(page, enrich=True) == 3  # 2 and 3 changed, 6 new (listed twice)
    got = await stored(db)
    assert got == {
        "s1:1": ("sale", Decimal(400), False),
        "s1:2": ("refunded", Decimal(400), True),
        "s1:3": ("sale", Decimal(401), True),
        "s1:4": ("sale", Decimal(400), True),
        "s1:5": ("sale", Decimal(400), True),
        "s1:6": ("sale", Decimal(402), True),  # its last state on the page
    }
    pending = {p.external_id: p.listing_hash for p in await store.pending("s1")}
    assert set(pending) == {"2", "3", "4", "5", "6"} and pending["3"] == listing_hash(row(3, total=401))


async def test_a_row_stored_meanwhile_is_replaced_not_lost(db: AsyncDatabase[Document]) -> None:
    store = RowsStore(db)
    # Another replica stored sale 8 with an older state after our read: our insert meets its key.
    older = single(row(8, total=100))
    await db[COLLECTIONS.sales].insert_one({**older, "listing_hash": "older"})
    docs = [{**single(row(i)), "listing_hash": listing_hash(row(i))} for i in (7, 8, 9)]
    left = await store._insert_new(docs)
    assert [d["_id"] for d in left] == ["s1:8"]
    assert {k: v[1] for k, v in (await stored(db)).items()} == {
        "s1:7": Decimal(400),
        "s1:8": Decimal(100),
        "s1:9": Decimal(400),
    }
    # The next listing read sees another hash there and replaces it with the listing's state.
    assert await store.store_listing([row(8)], enrich=False) == 1
    assert (await stored(db))["s1:8"][1] == Decimal(400)
