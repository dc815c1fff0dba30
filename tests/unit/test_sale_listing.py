"""The listing document's builder and collector (shared/sale_listing.py), without a database."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import bson
import pytest
from bson import Decimal128, Int64

from shared.sale_chunks import pack
from shared.sale_listing import (
    ListingCollector,
    ListingFilter,
    Unlistable,
    build_listing,
    build_listings,
    date_ms,
    listing_filter,
    listing_page,
    order_key,
)


def rows(n: int, status: str | None = "sale", source: str = "s") -> list[dict[str, object]]:
    return [
        {"_id": f"{source}:{i}", "source_report_id": source, "creator_id": 1, "channel_id": Int64(-5),
         "report_id": "r", "source": "excel", "row": i, "status": status, "user_id": Int64(i % 7),
         "purchase_amount": Decimal128(str(i % 5)), "is_premium": i % 2 == 0}
        for i in range(2, n + 2)
    ]  # fmt: skip


def test_bson_type_order_null_numbers_strings_booleans_dates() -> None:
    values = [datetime(2024, 1, 1), True, "a", Decimal128("2.5"), Int64(3), 1, None]
    assert sorted(values, key=order_key) == [None, 1, Decimal128("2.5"), Int64(3), "a", True, datetime(2024, 1, 1)]
    with pytest.raises(Unlistable, match="dict"):
        order_key({"a": 1})
    with pytest.raises(Unlistable, match="non-finite"):
        order_key(Decimal128("NaN"))


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, 0, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 500_000),
        datetime(2024, 5, 1, 12, 0, tzinfo=timezone(timedelta(hours=3))),
    ],
)
def test_date_ms_is_what_bson_stores(moment: datetime) -> None:
    encoded = bson.encode({"d": moment})  # length, type 0x09, key "d", then the int64
    assert date_ms(moment) == struct.unpack("<q", encoded[7:15])[0]


def test_a_status_past_the_cap_gets_no_listing_and_is_dropped_by_the_collector() -> None:
    chunks = pack([*rows(250), *rows(30, status="lead"), *rows(40, status=None)], chunk_rows=100)
    collector = ListingCollector(max_rows=200)
    for chunk in chunks:
        collector.add(bson.encode(chunk), chunk["status"], len(chunk["rows"]))
    built = [bson.decode(d) for d in collector.documents()]
    assert [d["status"] for d in built] == ["lead"]  # sale is past 200 rows; subscribers never
    assert built[0]["listing"]["n"] == 30
    assert {d["status"] for d in build_listings(chunks)} == {"sale", "lead"}


def test_a_listing_needs_every_chunk_of_its_status() -> None:
    chunks = [c for c in pack(rows(250), chunk_rows=100) if c["seq"] != 1]
    with pytest.raises(ValueError, match="every chunk"):
        build_listing(chunks)


def test_a_row_value_without_a_known_order_means_no_listing() -> None:
    odd = rows(3)
    odd[1]["name"] = {"nested": True}
    assert build_listing(pack(odd)) is None


def test_filters_the_listing_does_not_hold_are_left_to_the_database() -> None:
    assert listing_filter({"product": {"$eq": "A"}, "is_premium": True}) == ListingFilter("A", True)
    assert listing_filter({"product": {"$regex": "A"}}) is None
    assert listing_filter({"name": "x"}) is None
    assert listing_filter({"$or": [{"action_date": {"$gt": datetime(2024, 1, 1)}}]}) is None


def test_a_page_in_both_directions_is_the_same_rows_reversed() -> None:
    listing = build_listing(pack(rows(60)))
    assert listing is not None
    everything = ListingFilter()
    asc = listing_page(listing["listing"], everything, "purchase_amount", False, 1000, 0)
    desc = listing_page(listing["listing"], everything, "purchase_amount", True, 1000, 0)
    assert desc == asc[::-1] and len(asc) == 60
    amounts = [r["purchase_amount"].to_decimal() for r in asc]
    assert amounts == sorted(amounts)
    premium = listing_page(listing["listing"], ListingFilter(is_premium=True), "row", False, 5, 2)
    assert [r["row"] for r in premium] == [6, 8, 10, 12, 14]
