"""The listing document's builder and collector (shared/sale_listing.py), without a database."""

from __future__ import annotations

import json
import struct
from datetime import UTC, datetime, timedelta, timezone

import bson
import pytest
from bson import Decimal128, Int64

from shared.sale_chunks import pack
from shared.sale_listing import (
    KEY_ROWS_MAX_BYTES,
    LISTING_PART_ROWS,
    ListingCollector,
    ListingFilter,
    Unlistable,
    build_listing,
    build_listings,
    date_ms,
    key_rows,
    listing_filter,
    listing_positions,
    order_key,
    rows_at,
)
from shared.sale_row_json import ROW_JSON_VERSION, sale_row_json


def rows(n: int, status: str | None = "sale", source: str = "s") -> list[dict[str, object]]:
    return [
        {"_id": f"{source}:{i}", "source_report_id": source, "creator_id": 1, "channel_id": Int64(-5),
         "report_id": "r", "source": "excel", "row": i, "status": status, "user_id": Int64(i % 7),
         "purchase_amount": Decimal128(str(i % 5)), "is_premium": i % 2 == 0, "name": f"row {i}"}
        for i in range(2, n + 2)
    ]  # fmt: skip


def names(held: list[bytes] | None) -> list[str]:
    assert held is not None
    return [json.loads(row)["name"] for row in held]


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
    assert [d["_id"] for d in built] == ["s:lead:listing", f"s:lead:listing:{LISTING_PART_ROWS}:0"]  # sale: > 200 rows
    assert built[0]["listing"]["n"] == 30
    assert {d["status"] for d in build_listings(chunks)} == {"sale", "lead"}  # subscribers never


def test_a_listing_needs_every_chunk_of_its_status() -> None:
    chunks = [c for c in pack(rows(250), chunk_rows=100) if c["seq"] != 1]
    with pytest.raises(ValueError, match="every chunk"):
        build_listing(chunks)


def test_a_row_value_without_a_known_order_means_no_listing() -> None:
    odd = rows(3)
    odd[1]["name"] = {"nested": True}
    assert build_listing(pack(odd)) == []


def test_filters_the_listing_does_not_hold_are_left_to_the_database() -> None:
    assert listing_filter({"product": {"$eq": "A"}, "is_premium": True}) == ListingFilter("A", True)
    assert listing_filter({"product": {"$regex": "A"}}) is None
    assert listing_filter({"name": "x"}) is None
    assert listing_filter({"$or": [{"action_date": {"$gt": datetime(2024, 1, 1)}}]}) is None


def test_a_page_in_both_directions_is_the_same_rows_reversed() -> None:
    key, *parts = build_listing(pack(rows(2_500)))
    assert [p["listing_part"]["part"] for p in parts] == list(range(-(-2_500 // LISTING_PART_ROWS)))
    everything = ListingFilter()
    asc = listing_positions(key["listing"], everything, "purchase_amount", False, 3_000, 0)
    desc = listing_positions(key["listing"], everything, "purchase_amount", True, 3_000, 0)
    assert desc == asc[::-1] and sorted(asc) == list(range(2_500))
    by_amount = rows_at(parts, asc)
    assert by_amount is not None
    stored = rows(2_500)  # ties of an amount go by `_id`, as MongoDB's $sort on (amount, _id)
    expected = sorted(stored, key=lambda r: (r["purchase_amount"].to_decimal(), r["_id"]))  # type: ignore[attr-defined]
    assert by_amount == [sale_row_json(r) for r in expected]
    premium = listing_positions(key["listing"], ListingFilter(is_premium=True), "row", False, 5, 2)
    assert names(rows_at(parts, premium)) == ["row 6", "row 8", "row 10", "row 12", "row 14"]


def test_rows_at_stops_at_the_end_and_knows_a_missing_part() -> None:
    _, *parts = build_listing(pack(rows(1_050)))
    tail = rows_at(parts, range(1_040, 1_060))
    assert names(tail) == [f"row {i}" for i in range(1_042, 1_052)]
    assert rows_at(parts, range(1_050, 1_060)) is None  # past the end: nothing to cut
    assert rows_at(parts[:1], range(1_000, 1_010)) is None  # its part is not there


def test_a_small_statuses_key_holds_its_rows_as_its_parts_do() -> None:
    key, *parts = build_listing(pack(rows(600)))
    assert sum(len(sale_row_json(r)) for r in rows(600)) <= KEY_ROWS_MAX_BYTES  # small enough to be held
    assert len(parts) == 3  # and still written to parts, which its default pages read
    positions = listing_positions(key["listing"], ListingFilter(is_premium=False), "purchase_amount", True, 50, 7)
    held = key_rows(key["listing"], positions)
    assert held is not None and len(held) == 50
    assert held == rows_at(parts, positions)
    assert key_rows(key["listing"], [599, 600, 601]) == rows_at(parts, [599])  # nothing past the end


def test_a_larger_statuses_key_holds_no_rows() -> None:
    many = rows(1_200)
    for row in many:
        row["name"] = "x" * 450  # each row ≈ 0.5 KiB: the status passes KEY_ROWS_MAX_BYTES
    assert sum(len(sale_row_json(r)) for r in many) > KEY_ROWS_MAX_BYTES
    key, *parts = build_listing(pack(many))
    assert "rows" not in key["listing"] and "ends" not in key["listing"]
    assert key_rows(key["listing"], [0, 1]) is None  # its pages read the parts
    assert len(parts) == 5


def test_rows_are_held_as_the_json_the_listing_answers_with() -> None:
    key, *parts = build_listing(pack(rows(300)))
    assert key["listing"]["json"] == ROW_JSON_VERSION and all(p["listing_part"]["json"] for p in parts)
    first = parts[0]["listing_part"]
    end = struct.unpack_from("<I", first["ends"])[0]
    assert bytes(first["rows"][:end]) == sale_row_json(rows(1)[0])  # the first row's JSON, as sent


def bson_layout(held: dict[str, object], stored: list[dict[str, object]]) -> dict[str, object]:
    """Rows held as a release before 2026-12-07 held them: each row's BSON, no `json`."""
    encoded = [bson.encode(row) for row in stored]
    ends, total = [], 0
    for row in encoded:
        total += len(row)
        ends.append(total)
    rest = {k: v for k, v in held.items() if k not in ("rows", "ends", "json")}
    return {**rest, "rows": b"".join(encoded), "ends": struct.pack(f"<{len(ends)}I", *ends)}


def test_rows_held_as_bson_by_an_earlier_release_are_read_as_json() -> None:
    stored = rows(600)
    key, *parts = build_listing(pack(stored))
    earlier = [
        {
            **p,
            "listing_part": bson_layout(p["listing_part"], stored[n * LISTING_PART_ROWS : (n + 1) * LISTING_PART_ROWS]),
        }
        for n, p in enumerate(parts)
    ]
    earlier_key = bson_layout(key["listing"], stored)
    positions = listing_positions(key["listing"], ListingFilter(is_premium=True), "user_id", True, 50, 3)
    assert len(positions) == 50
    assert rows_at(earlier, positions) == rows_at(parts, positions) == [sale_row_json(stored[i]) for i in positions]
    assert key_rows(earlier_key, positions) == key_rows(key["listing"], positions) == rows_at(parts, positions)


def test_rows_held_in_another_json_version_are_never_sent() -> None:
    key, *parts = build_listing(pack(rows(600)))
    later = [{**p, "listing_part": {**p["listing_part"], "json": ROW_JSON_VERSION + 1}} for p in parts]
    assert rows_at(later, range(10)) is None  # the page then comes from the chunks
    assert key_rows({**key["listing"], "json": ROW_JSON_VERSION + 1}, range(10)) is None
