"""Reads of reports and sale rows for the API. Every query is scoped to the caller (creator_id):
someone else's report is indistinguishable from a missing one."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

import bson
from bson import Decimal128, Int64
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User
from shared.currency import DEFAULT_CURRENCY
from shared.decimal128 import decimal_of
from shared.mongo import COLLECTIONS, Document
from shared.reports import NUMBER_METRIC_NAMES
from shared.sale_chunks import CHUNK_MATCH_FIELDS, SALES_INDEX, chunk_id, page_of, page_seqs, rows_pipeline
from shared.sale_listing import (
    ORDER_FIELDS,
    key_rows,
    listing_filter,
    listing_id,
    listing_positions,
    part_ids,
    rows_at,
)
from shared.sale_row_json import sale_row_json
from shared.source_reports import PENDING

# Public name → stored field, for the report list's order_by whitelist.
REPORT_ORDER_FIELDS = {"created_at": "created_at", "name": "name", "id": "_id", "channel_id": "channel_id"}


def plain(value: Any) -> Any:
    """BSON scalars → Python (Decimal128 → Decimal, Int64 → int)."""
    if isinstance(value, Decimal128):
        return decimal_of(value)
    if isinstance(value, Int64):
        return int(value)
    return value


async def report_view(db: AsyncDatabase[Document], user: User, report_id: str) -> dict[str, Any] | None:
    """The report as the API returns it (before serialisation), or None when missing or foreign."""
    # The report and its sources in one round trip: each database call costs the gateway CPU in the
    # driver whatever it returns (docs/benchmarks.md, "a report and its sources in one `$lookup`"),
    # and this is the most requested read. `$lookup` goes through the source_reports `report_id`
    # index, on MongoDB as on SecantusDB. Matched on `_id` alone and owned here (see `by_ids`); a
    # foreign report's sources are read then dropped with it. No `$project` either: it cost
    # SecantusDB more than the gateway's skipping the raw totals, which it never decodes: read as
    # raw BSON, a nested document (the totals of the last pass, per link and per currency, can be
    # megabytes) stays bytes until something asks for it.
    found = await (
        await db.get_collection(COLLECTIONS.reports, codec_options=_raw(db)).aggregate(
            [
                {"$match": {"_id": report_id}},
                {
                    "$lookup": {
                        "from": COLLECTIONS.source_reports,
                        "localField": "_id",
                        "foreignField": "report_id",
                        "as": "sources",
                    }
                },
            ]
        )
    ).to_list()
    if not found or found[0].get("creator_id") != user.id:
        return None
    sources = [_top_level(source, db.codec_options) for source in found[0]["sources"]]
    return view_of(_top_level(found[0], db.codec_options), sorted(sources, key=lambda s: (s["created_at"], s["_id"])))


def _raw(db: AsyncDatabase[Document]) -> CodecOptions[RawBSONDocument]:
    """The database's codec options (time zone awareness and all), with raw BSON documents."""
    return db.codec_options.with_options(document_class=RawBSONDocument)


def _top_level(doc: Mapping[str, Any], codec_options: CodecOptions[Document]) -> Document:
    """A raw document's top-level fields, its nested documents decoded only where a view reads them."""
    return {
        key: bson.decode(value.raw, codec_options)
        if key in _DECODED_FIELDS and isinstance(value, RawBSONDocument)
        else value
        for key, value in doc.items()
    }


# The nested documents a report view reads; any other (totals, verdict, progress…) stays raw.
_DECODED_FIELDS: Final = frozenset({"exchange_rates", "profit_by_currency", "progress"})


async def by_ids(collection: AsyncCollection[Document], ids: list[str], owner: Document) -> list[Document]:
    """The documents of `ids` that match `owner` (field → plain value; anything else is asked of
    the database).

    Looked up by `_id` alone and owned here: given the owner's fields beside `_id`, SecantusDB plans
    the query as a scan and spends about twice the CPU on the same answer (docs/benchmarks.md,
    "Figures behind code comments"). On MongoDB both are one `_id` index lookup, so the answer is
    the same on either."""
    if any(isinstance(value, dict) for value in owner.values()):
        return await collection.find({"_id": {"$in": ids}, **owner}).to_list()
    found = await collection.find({"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": ids}}).to_list()
    return [doc for doc in found if all(doc.get(field) == value for field, value in owner.items())]


def view_of(doc: Document, sources: list[Document]) -> dict[str, Any]:
    """A stored report and its sources (in the order to show them) as the API returns it."""
    view: dict[str, Any] = {
        "id": doc["_id"],
        "name": doc["name"],
        "created_at": doc["created_at"],
        "channel_id": plain(doc["channel_id"]),
        "status": doc["status"],
        "budget": plain(doc["budget"]),
        "creator_id": doc["creator_id"],
        "error_message": doc.get("error_message"),
        "updated_at": doc.get("updated_at") or doc["created_at"],
        "source_reports": [
            {
                "id": s["_id"],
                "kind": s.get("kind", "excel"),
                "name": _source_name(s),
                "status": s.get("status", PENDING),
                "rows": s["rows"] if s.get("rows") is not None else (s.get("progress") or {}).get("sales"),
                "created_at": s["created_at"],
            }
            for s in sources
        ],
    }
    for field in NUMBER_METRIC_NAMES:
        view[field] = plain(doc.get(field))
    # A report stored before currencies existed was, like every row in it, in the default currency.
    view["currency"] = doc.get("currency") or DEFAULT_CURRENCY
    view["exchange_rates"] = money_map(doc.get("exchange_rates"))
    view["profit_by_currency"] = money_map(doc.get("profit_by_currency"))
    view["warnings"] = [str(w) for w in doc.get("warnings") or []]
    return view


def money_map(value: object) -> dict[str, Any]:
    """A stored {code: Decimal128} map as {code: Decimal}; anything else as an empty map."""
    if not isinstance(value, dict):
        return {}
    return {str(key): plain(amount) for key, amount in value.items()}


def _source_name(source: Document) -> str:
    """A file's name, or for a connector its platform and period."""
    if source.get("name"):
        return str(source["name"])
    if source.get("kind") == "connector":
        start, end = source.get("period_start"), source.get("period_end")
        dated = isinstance(start, datetime) and isinstance(end, datetime)
        period = f" {start:%Y-%m-%d}..{end:%Y-%m-%d}" if dated else ""
        return f"{source.get('source', 'connector')}{period}"
    return str(source["_id"])


async def list_reports(
    db: AsyncDatabase[Document],
    user: User,
    channel_id: int,
    order_by: str,
    order_dir: Literal["asc", "desc"],
    limit: int,
    offset: int,
) -> list[dict[str, Any]]:
    field = REPORT_ORDER_FIELDS[order_by]
    direction = ASCENDING if order_dir == "asc" else DESCENDING
    cursor = db[COLLECTIONS.reports].find(
        {"creator_id": user.id, "channel_id": Int64(channel_id)},
        projection={"name": 1, "created_at": 1, "channel_id": 1},
        sort=[(field, direction), ("_id", direction)],
        skip=offset,
        limit=limit,
    )
    return [
        {
            "id": d["_id"],
            "name": d["name"],
            "created_at": d["created_at"],
            "channel_id": plain(d["channel_id"]),
        }
        async for d in cursor
    ]


async def find_source_report(
    db: AsyncDatabase[Document], user: User, channel_id: int, source_report_id: str
) -> Document | None:
    found = await by_ids(
        db[COLLECTIONS.source_reports], [source_report_id], {"creator_id": user.id, "channel_id": Int64(channel_id)}
    )
    return found[0] if found else None


def sales_query(
    source_report_id: str,
    status: str,
    product: str | None,
    is_premium: bool | None,
    start_date: datetime | None,
    end_date: datetime | None,
    is_null_invite_link: bool | None,
) -> Document:
    """The filter of the sales listing. Every value is compared as a literal, never as an operator."""
    query: Document = {"source_report_id": source_report_id, "status": status}
    if product is not None:
        query["product"] = {"$eq": product}
    if is_premium is not None:
        query["is_premium"] = is_premium
    if is_null_invite_link is not None:
        query["invite_link"] = None if is_null_invite_link else {"$ne": None}
    if start_date is not None or end_date is not None:
        bounds: dict[str, datetime] = {}
        if start_date is not None:
            bounds["$gte"] = _utc(start_date)
        if end_date is not None:
            bounds["$lte"] = _utc(end_date)
        # The period applies to action_date, or to sub_date for rows without one.
        query["$or"] = [{"action_date": bounds}, {"action_date": None, "sub_date": bounds}]
    return query


def owned(query: Document, user: User, channel_id: int) -> Document:
    """The rows of `query` that belong to the caller, in the given channel."""
    return {**query, "creator_id": user.id, "channel_id": Int64(channel_id)}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


SALE_ORDER_FIELDS = ORDER_FIELDS

SALES_INDEX_FIELDS = frozenset(field for field, _ in SALES_INDEX)


async def list_sales(
    db: AsyncDatabase[Document],
    query: Document,
    order_by: str | None,
    order_dir: Literal["asc", "desc"],
    limit: int,
    offset: int,
) -> list[bytes]:
    """One page of the rows `query` selects (it names the source report and the status), each row
    as its JSON (shared/sale_row_json.py; `json_array` makes the answer of them).

    Where the status has listing documents (shared/sale_listing.py: an Excel file's status of up to
    `LISTING_MAX_ROWS` rows), every page is cut from them: the default page (row order, no filter
    on the rows' own fields) from the one or two parts that hold it, any other from the positions
    the key document gives. Else the default page is cut from the one or two chunks that hold
    it, looked up by `_id`, and any other unwinds the source's chunks of that status: the indexed
    `$match` picks the chunks, the rows' own filters (a period is an `$or`) apply after the unwind."""
    chunk_match = {field: value for field, value in query.items() if field in CHUNK_MATCH_FIELDS}
    row_match = {field: value for field, value in query.items() if field not in chunk_match}
    source_report_id, status = str(query["source_report_id"]), query.get("status")
    if not row_match and order_by in (None, "row") and order_dir == "asc":
        if isinstance(status, str):
            positions = range(offset, offset + limit)
            parts = await by_ids(db[COLLECTIONS.sales], part_ids(source_report_id, status, positions), chunk_match)
            listed = rows_at(parts, positions, _listed_rows(db))
            if listed is not None:
                return listed
        seqs = page_seqs(offset, limit)
        ids = [chunk_id(source_report_id, status, seq) for seq in seqs]
        chunks = await by_ids(db[COLLECTIONS.sales], ids, chunk_match)
        if any("seq" in chunk for chunk in chunks):
            return [sale_row_json(row) for row in page_of(chunks, offset, limit)]
        # No chunk there: past the end, or a source whose rows are stored one by one (a
        # connector's), or not the caller's; the general path below tells them apart.
    else:
        listed = await listed_page(db, chunk_match, row_match, order_by, order_dir, limit, offset)
        if listed is not None:
            return listed
    pipeline = listing_pipeline(query, order_by, order_dir, limit, offset)
    return [sale_row_json(d) async for d in await db[COLLECTIONS.sales].aggregate(pipeline)]


async def listed_page(
    db: AsyncDatabase[Document],
    chunk_match: Document,
    row_match: Document,
    order_by: str | None,
    order_dir: Literal["asc", "desc"],
    limit: int,
    offset: int,
) -> list[bytes] | None:
    """The page (each row's JSON) cut from the status's listing documents (shared/sale_listing.py), or None when
    there are none to cut it from (a connector's source, a large status, not the caller's, a
    filter the listing does not hold): the aggregation answers then."""
    wanted = listing_filter(row_match)
    status = chunk_match.get("status")
    if wanted is None or not isinstance(status, str):
        return None
    source_report_id = str(chunk_match["source_report_id"])
    sales = db[COLLECTIONS.sales]
    keys = await by_ids(sales, [listing_id(source_report_id, status)], chunk_match)
    if not keys or "listing" not in keys[0]:
        return None
    key = keys[0]
    field = SALE_ORDER_FIELDS[order_by] if order_by else "row"
    positions = listing_positions(key["listing"], wanted, field, order_dir == "desc", limit, offset)
    if not positions:
        return []
    # A small status's key holds its rows too: no second read then.
    held = key_rows(key["listing"], positions, _listed_rows(db))
    if held is not None:
        return held
    parts = await by_ids(sales, part_ids(source_report_id, status, positions), chunk_match)
    return rows_at(parts, positions, _listed_rows(db))


def listing_pipeline(
    query: Document, order_by: str | None, order_dir: Literal["asc", "desc"], limit: int, offset: int
) -> list[Document]:
    """The aggregation of a listing page that is not cut from its chunks by `_id`."""
    chunk_match = {field: value for field, value in query.items() if field in CHUNK_MATCH_FIELDS}
    row_match = {field: value for field, value in query.items() if field not in chunk_match}
    direction = ASCENDING if order_dir == "asc" else DESCENDING
    sort = {SALE_ORDER_FIELDS[order_by] if order_by else "row": direction, "_id": direction}
    # The index's own fields alone in the first $match, the ownership in the next: given both in
    # one, SecantusDB's planner scans the whole collection instead of the `sales` index (2-3× the
    # database CPU of the page, more as the collection grows; docs/benchmarks.md, "Gateway load").
    # MongoDB merges adjacent $match stages, so there this is the same query.
    index_match = {field: value for field, value in chunk_match.items() if field in SALES_INDEX_FIELDS}
    owner_match = {field: value for field, value in chunk_match.items() if field not in index_match}
    pipeline = [{"$match": index_match}, *rows_pipeline(owner_match, row_match), {"$sort": sort}]
    if offset:
        pipeline.append({"$skip": offset})
    pipeline.append({"$limit": limit})
    return pipeline


def _listed_rows(db: AsyncDatabase[Document]) -> CodecOptions[Document]:
    """How a page's rows are decoded from listing parts written as BSON (before listings held
    their rows' JSON): with naive datetimes, cheaper than aware ones (docs/benchmarks.md, "Figures
    behind code comments"), since sale_row_view writes a naive moment as the UTC it is stored in."""
    return db.codec_options.with_options(tz_aware=False, tzinfo=None)
