"""The listing documents: what a filtered or re-ordered page of the sales listing is cut from.

For each (Excel source report, action status) of at most `LISTING_MAX_ROWS` rows, the parse worker
writes, after that status's chunks (shared/sale_chunks.py) and into the same `sales` collection,
one key document and the row parts:

    {_id: "{source_report_id}:{status}:listing", report_id, source_report_id, channel_id,
     creator_id, source, status, rows: [], listing: {
        n:       rows of that status
        order:   {stored field: uint32 permutation of the rows in MongoDB's ascending `$sort`
                  order on (field, _id)} for every field the listing may be ordered by
        products / product, premium, link_null, action, action_ms, sub, sub_ms:
                  what the listing's filters compare, one entry per row (see `_keeps`)
        rows, ends, json: only when the status's rows take at most `KEY_ROWS_MAX_BYTES`: all
                  of them, as in the parts (below), so a filtered page needs no second read}}
    {_id: "{source_report_id}:{status}:listing:{rows per part}:{part}", (the same owner fields),
     status, rows: [], listing_part: {part, rows: the JSON of rows part*250 .. part*250+249
                    of the status, each as the listing answers with it (shared/sale_row_json.py),
                    concatenated; ends: uint32 end offset of each; json: ROW_JSON_VERSION}}

Why: without them, such a page makes the database unwind, filter and sort every row of the
status (SecantusDB spent 15-50 ms on a 4 000-row source's page, 330 ms when sorting by amount),
where reading a few binary fields costs it under a millisecond (docs/benchmarks.md, "Gateway
load", 2026-12-05). The gateway picks the page's positions from the key document and joins the
page's rows from their parts; a default page of a listed status is cut from its one or two
parts instead of its chunks (binary: the database does not decode every row of them).
Rows are held as their JSON, so a page is sent as the held bytes: decoding each row's BSON and
writing it as JSON cost the gateway ≈ 12 µs a row, most of a 50-row page's CPU, and the JSON is
smaller (docs/benchmarks.md, "Figures behind code comments"). Listings written before 2026-12-07
hold their rows as BSON, exactly as stored in the chunks, and no `json`: they are read as such.
A small status's key document also holds its rows: its filtered and ordered pages are then one
read instead of two (the key, then the parts its positions fall in); its default pages still read
the parts, which hold no more than the page needs.

Why in `sales`: everything that deletes a source's rows deletes by `source_report_id`, so the
listing can never outlive them; it has no rows of its own (`rows: []`), so every reader that
unwinds chunks (totals, exports, counts) skips it; it has no `seq`, so no page is cut from it as
a chunk. An Excel source's rows never change once stored, so the listing never goes stale. A
status with more rows (or rows too large for a part) and a connector's source, whose rows change
one by one, have none: their pages come from the chunks and the aggregation, as before.
"""

from __future__ import annotations

import calendar
import sys
from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import accumulate
from typing import Any, Final

import bson
from bson import Binary, Decimal128
from bson.codec_options import DEFAULT_CODEC_OPTIONS, CodecOptions

from shared.sale_chunks import CHUNK_FIELDS
from shared.sale_row_json import ROW_JSON_VERSION, sale_row_json
from shared.sale_rows import ACTION_STATUSES, ORDERABLE_FIELDS

Document = dict[str, Any]

LISTING_MAX_ROWS: Final = 20_000
# Rows per part document: a page reads the one or two parts that hold its rows instead of chunks
# (binary, so the database does not decode each row). A part costs SecantusDB and the driver in
# proportion to its bytes, and pages are 10-50 rows: parts of 250 rows cost a page less CPU than
# parts of 1 000 (docs/benchmarks.md, "Figures behind code comments").
# The size is part of each part's `_id` (listing_part_id), so parts written with another size
# are never read as these: their pages come from the chunks, as for a source without a listing.
LISTING_PART_ROWS: Final = 250
# Until 2026-12-07 parts were of 1 000 rows, under "{source_report_id}:{status}:listing:{part}":
# start-up cuts them into today's (shared.mongo.resize_listing_parts, with `resized_parts`).
FORMER_PART_ROWS: Final = 1_000
# A status whose rows take at most this many bytes has them in its key document too. A filtered or
# ordered page of such a status is one read of the key instead of two (the key, then its parts):
# a second database command costs the gateway and the database more than reading up to about
# this many bytes more, and a page's positions fall in most of a small status's parts anyway
# (docs/benchmarks.md, "Figures behind code comments"). Larger statuses, whose pages read a few
# of many parts, keep the two reads.
KEY_ROWS_MAX_BYTES: Final = 512 * 1024
# Well under MongoDB's 16 MiB document limit: a status whose largest row would make a part
# larger gets no listing.
LISTING_MAX_BYTES: Final = 12 * 1024 * 1024
# The stored field each orderable field of the API sorts on.
ORDER_FIELDS: Final = {field: "action_period_ms" if field == "action_period" else field for field in ORDERABLE_FIELDS}
LISTED_STATUSES: Final = frozenset(ACTION_STATUSES)
_LITTLE: Final = sys.byteorder == "little"


def listing_id(source_report_id: str, status: str) -> str:
    return f"{source_report_id}:{status}:listing"


def listing_part_id(source_report_id: str, status: str, part: int) -> str:
    return f"{source_report_id}:{status}:listing:{LISTING_PART_ROWS}:{part}"


def is_former_part(doc: Mapping[str, Any]) -> bool:
    """A part document stored under the former layout (FORMER_PART_ROWS rows, no size in its id)."""
    body = doc.get("listing_part")
    if not isinstance(body, Mapping):
        return False
    return doc.get("_id") == f"{doc.get('source_report_id')}:{doc.get('status')}:listing:{body.get('part')}"


def resized_parts(former: Mapping[str, Any]) -> list[Document]:
    """The parts of LISTING_PART_ROWS rows that hold the same rows as a former part (the same row
    bytes, cut at the same row ends), with its owner fields."""
    body = former["listing_part"]
    rows, ends = bytes(body["rows"]), _unpacked("I", bytes(body["ends"]))
    first = int(body["part"]) * FORMER_PART_ROWS
    owner = {field: value for field, value in former.items() if field not in ("_id", "listing_part")}
    parts: list[Document] = []
    for at in range(0, len(ends), LISTING_PART_ROWS):
        begin, members = ends[at - 1] if at else 0, ends[at : at + LISTING_PART_ROWS]
        part = (first + at) // LISTING_PART_ROWS
        parts.append({
            "_id": listing_part_id(str(former["source_report_id"]), str(former["status"]), part), **owner,
            "listing_part": {"part": part, "rows": Binary(rows[begin : members[-1]]),
                             "ends": _packed("I", (end - begin for end in members)),
                             **({"json": body["json"]} if "json" in body else {})},
        })  # fmt: skip
    return parts


def part_ids(source_report_id: str, status: str, positions: Iterable[int]) -> list[str]:
    """The parts that hold rows at `positions` (row order within the status)."""
    parts = sorted({i // LISTING_PART_ROWS for i in positions})
    return [listing_part_id(source_report_id, status, part) for part in parts]


class Unlistable(ValueError):
    """A row holds a value whose sort order this module does not reproduce: no listing then."""


def order_key(value: Any) -> tuple[int, Any]:
    """MongoDB's sort order across BSON types (null < numbers < strings < booleans < dates), for
    the values a stored row holds. Strings compare by code point, as MongoDB's binary UTF-8
    comparison does."""
    if value is None:
        return (1, 0)
    if isinstance(value, bool):
        return (8, value)
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, Decimal128):
        number = value.to_decimal()
        if not number.is_finite():
            raise Unlistable("a non-finite amount")
        return (2, number)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, datetime):
        return (9, date_ms(value))
    raise Unlistable(f"a value of type {type(value).__name__}")


def date_ms(value: datetime) -> int:
    """A datetime as BSON stores it: milliseconds since the epoch, UTC (naive means UTC)."""
    offset = value.utcoffset()
    if offset is not None:
        value = value - offset
    return calendar.timegm(value.timetuple()) * 1000 + value.microsecond // 1000


def _packed(typecode: str, values: Iterable[int]) -> Binary:
    packed = array(typecode, values)
    if not _LITTLE:
        packed.byteswap()
    return Binary(packed.tobytes())


def _unpacked(typecode: str, data: bytes) -> array[int]:
    values = array(typecode)
    values.frombytes(data)
    if not _LITTLE:
        values.byteswap()
    return values


def _date_column(rows: Sequence[Mapping[str, Any]], field: str) -> tuple[Binary, Binary]:
    """(kind, ms) per row: kind 0 = null or missing, 1 = a date, 2 = anything else."""
    kinds: list[int] = []
    ms: list[int] = []
    for row in rows:
        value = row.get(field)
        if isinstance(value, datetime):
            kinds.append(1)
            ms.append(date_ms(value))
        else:
            kinds.append(0 if value is None else 2)
            ms.append(0)
    return _packed("b", kinds), _packed("q", ms)


def build_listing(chunks: Sequence[Mapping[str, Any]]) -> list[Document]:
    """The listing documents (key, then parts) of one source's rows of one status, from all of that
    status's chunks (any order: they are put in `seq` order); none when the status gets none."""
    if not chunks:
        return []
    ordered = sorted(chunks, key=lambda c: int(c["seq"]))
    if [int(c["seq"]) for c in ordered] != list(range(len(ordered))):
        raise ValueError("a listing needs every chunk of the status")
    first = ordered[0]
    status = first.get("status")
    if status not in LISTED_STATUSES:
        return []
    rows = [row for chunk in ordered for row in chunk["rows"]]
    if len(rows) > LISTING_MAX_ROWS:
        return []
    try:
        keys = {field: [order_key(row.get(field)) for row in rows] for field in dict.fromkeys(ORDER_FIELDS.values())}
    except Unlistable:
        return []
    ids = [str(row["_id"]) for row in rows]
    order: Document = {}
    for field, field_keys in keys.items():
        order[field] = _packed("I", sorted(range(len(rows)), key=lambda i: (field_keys[i], ids[i])))
    encoded = [sale_row_json(row) for row in rows]
    if max(len(row) for row in encoded) * LISTING_PART_ROWS > LISTING_MAX_BYTES:
        return []
    products: dict[str, int] = {}
    product_codes = [
        products.setdefault(p, len(products)) if isinstance(p := row.get("product"), str) else -1 for row in rows
    ]
    premium = [1 if row.get("is_premium") is True else 0 if row.get("is_premium") is False else -1 for row in rows]
    action, action_ms = _date_column(rows, "action_date")
    sub, sub_ms = _date_column(rows, "sub_date")
    source_report_id = str(first["source_report_id"])
    owner = {field: first.get(field) for field in CHUNK_FIELDS}
    key: Document = {"_id": listing_id(source_report_id, status), **owner, "status": status, "rows": []}
    key["listing"] = {
        "n": len(rows),
        "order": order,
        "products": list(products),
        "product": _packed("i", product_codes),
        "premium": _packed("b", premium),
        "link_null": _packed("b", [1 if row.get("invite_link") is None else 0 for row in rows]),
        "action": action,
        "action_ms": action_ms,
        "sub": sub,
        "sub_ms": sub_ms,
    }
    if sum(len(row) for row in encoded) <= KEY_ROWS_MAX_BYTES:
        key["listing"]["rows"] = Binary(b"".join(encoded))
        key["listing"]["ends"] = _packed("I", accumulate(len(row) for row in encoded))
        key["listing"]["json"] = ROW_JSON_VERSION
    docs = [key]
    for part, start in enumerate(range(0, len(rows), LISTING_PART_ROWS)):
        members = encoded[start : start + LISTING_PART_ROWS]
        ends = list(accumulate(len(row) for row in members))
        docs.append({
            "_id": listing_part_id(source_report_id, status, part), **owner, "status": status, "rows": [],
            "listing_part": {"part": part, "rows": Binary(b"".join(members)), "ends": _packed("I", ends),
                             "json": ROW_JSON_VERSION},
        })  # fmt: skip
    return docs


def build_listings(chunks: Iterable[Mapping[str, Any]]) -> list[Document]:
    """The listing documents of packed chunks of any sources and statuses (chunks of one, which
    have no `seq`, get none)."""
    groups: dict[tuple[str, str | None], list[Mapping[str, Any]]] = {}
    for chunk in chunks:
        if "seq" in chunk:
            groups.setdefault((str(chunk["source_report_id"]), chunk.get("status")), []).append(chunk)
    return [doc for group in groups.values() for doc in build_listing(group)]


class ListingCollector:
    """Gathers a source's chunks (as BSON, with their status and row count) per status while they
    are written, and builds the listings once all are in. Holds at most `LISTING_MAX_ROWS` rows'
    bytes per status: a status that grows past it is dropped at once (it gets no listing)."""

    def __init__(self, max_rows: int = LISTING_MAX_ROWS) -> None:
        self.max_rows = max_rows
        self._chunks: dict[str, list[bytes]] = {}
        self._rows: dict[str, int] = {}
        self._dropped: set[str] = set()

    def add(self, chunk: bytes, status: str | None, rows: int) -> None:
        if status not in LISTED_STATUSES or status in self._dropped:
            return
        count = self._rows.get(status, 0) + rows
        if count > self.max_rows:
            self._dropped.add(status)
            self._chunks.pop(status, None)
            return
        self._rows[status] = count
        self._chunks.setdefault(status, []).append(chunk)

    def documents(self) -> Iterator[bytes]:
        """The listings, BSON-encoded, one status at a time (each status's chunks freed as built)."""
        for status in list(self._chunks):
            for doc in build_listing([bson.decode(chunk) for chunk in self._chunks.pop(status)]):
                yield bson.encode(doc)


@dataclass(frozen=True)
class ListingFilter:
    """The row filters of the sales listing, as a listing answers them (None: no such filter)."""

    product: str | None = None
    is_premium: bool | None = None
    link_null: bool | None = None
    start_ms: int | None = None
    end_ms: int | None = None
    period: bool = False


def listing_filter(row_match: Mapping[str, Any]) -> ListingFilter | None:
    """The filter of `row_match` (the row-level part of the gateway's sales query, as
    `services.gateway.reports.sales_query` builds it), or None for anything else."""
    product: str | None = None
    is_premium: bool | None = None
    link_null: bool | None = None
    bounds: Mapping[str, Any] | None = None
    for field, value in row_match.items():
        if field == "product" and isinstance(value, Mapping) and set(value) == {"$eq"}:
            if not isinstance(value["$eq"], str):
                return None
            product = value["$eq"]
        elif field == "is_premium" and isinstance(value, bool):
            is_premium = value
        elif field == "invite_link" and value is None:
            link_null = True
        elif field == "invite_link" and value == {"$ne": None}:
            link_null = False
        elif field == "$or" and (found := _period_bounds(value)) is not None:
            bounds = found
        else:
            return None
    if bounds is None:
        return ListingFilter(product, is_premium, link_null)
    start, end = bounds.get("$gte"), bounds.get("$lte")
    return ListingFilter(
        product,
        is_premium,
        link_null,
        None if start is None else date_ms(start),
        None if end is None else date_ms(end),
        period=True,
    )


def _period_bounds(value: Any) -> Mapping[str, Any] | None:
    """The bounds of the period's `$or` ([{action_date: b}, {action_date: None, sub_date: b}])."""
    if not isinstance(value, list) or len(value) != 2:
        return None
    on_action, on_sub = value
    bounds = on_action.get("action_date") if isinstance(on_action, Mapping) and len(on_action) == 1 else None
    if not isinstance(bounds, Mapping) or not bounds or set(bounds) - {"$gte", "$lte"}:
        return None
    if not all(isinstance(v, datetime) for v in bounds.values()):
        return None
    if on_sub != {"action_date": None, "sub_date": bounds}:
        return None
    return bounds


def _keeps(listing: Mapping[str, Any], wanted: ListingFilter) -> Callable[[int], bool] | None:
    """A predicate over row positions, or None when every row passes."""
    tests: list[Callable[[int], bool]] = []
    if wanted.product is not None:
        products: list[str] = list(listing["products"])
        code = products.index(wanted.product) if wanted.product in products else -2
        codes = _unpacked("i", listing["product"])
        tests.append(lambda i: codes[i] == code)
    if wanted.is_premium is not None:
        premium = _unpacked("b", listing["premium"])
        flag = 1 if wanted.is_premium else 0
        tests.append(lambda i: premium[i] == flag)
    if wanted.link_null is not None:
        link_null = _unpacked("b", listing["link_null"])
        null = 1 if wanted.link_null else 0
        tests.append(lambda i: link_null[i] == null)
    if wanted.period:
        action, action_ms = _unpacked("b", listing["action"]), _unpacked("q", listing["action_ms"])
        sub, sub_ms = _unpacked("b", listing["sub"]), _unpacked("q", listing["sub_ms"])
        lo = wanted.start_ms if wanted.start_ms is not None else -(2**63)
        hi = wanted.end_ms if wanted.end_ms is not None else 2**63 - 1

        def in_period(i: int) -> bool:
            if action[i] == 1:
                return lo <= action_ms[i] <= hi
            return action[i] == 0 and sub[i] == 1 and lo <= sub_ms[i] <= hi

        tests.append(in_period)
    if not tests:
        return None
    if len(tests) == 1:
        return tests[0]
    return lambda i: all(test(i) for test in tests)


def listing_positions(
    listing: Mapping[str, Any], wanted: ListingFilter, order_field: str, descending: bool, limit: int, offset: int
) -> list[int]:
    """The row positions (row order within the status) of one page: the rows `wanted` keeps, in
    the order of (`order_field`, `_id`) as MongoDB's `$sort` gives it, `offset` skipped, at most
    `limit`."""
    permutation = _unpacked("I", listing["order"][order_field])
    keep = _keeps(listing, wanted)
    if keep is None:
        ordered = permutation[::-1] if descending else permutation
        return list(ordered[offset : offset + limit])
    page: list[int] = []
    skipped = 0
    for i in reversed(permutation) if descending else permutation:
        if not keep(i):
            continue
        if skipped < offset:
            skipped += 1
            continue
        page.append(i)
        if len(page) >= limit:
            break
    return page


def rows_at(
    parts: Iterable[Mapping[str, Any]],
    positions: Iterable[int],
    codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS,
) -> list[bytes] | None:
    """The JSON of the rows at `positions`, in that order, from the listing's part documents (rows
    a part holds as BSON, as written before parts held their JSON, decoded with the database
    client's `codec_options` and written as JSON). Stops at the first position past the last row
    (a page past the end); None when no part holds the first position, or a part holds its rows'
    JSON in another version than this release writes (ROW_JSON_VERSION)."""
    by_part = {int(p["listing_part"]["part"]): p["listing_part"] for p in parts}
    ends: dict[int, array[int]] = {}
    rows: list[bytes] = []
    for i in positions:
        number, at = divmod(i, LISTING_PART_ROWS)
        part = by_part.get(number)
        if part is not None and number not in ends:
            if not _readable(part):
                return None
            ends[number] = _unpacked("I", part["ends"])
        if part is None or at >= len(ends[number]):
            if not rows:
                return None
            break
        rows.append(_row(part, ends[number], at, codec_options))
    return rows


def key_rows(
    listing: Mapping[str, Any],
    positions: Iterable[int],
    codec_options: CodecOptions[Any] = DEFAULT_CODEC_OPTIONS,
) -> list[bytes] | None:
    """The JSON of the rows at `positions` from a key document's own copy of its rows (`listing`:
    its `listing` field), as `rows_at` cuts them from parts; None when the key holds no rows (a
    status larger than KEY_ROWS_MAX_BYTES, or a key written before keys held them) or holds them
    in another version of their JSON."""
    if "rows" not in listing or not _readable(listing):
        return None
    ends = _unpacked("I", listing["ends"])
    return [_row(listing, ends, at, codec_options) for at in positions if at < len(ends)]


def _readable(held: Mapping[str, Any]) -> bool:
    """Rows held as BSON (no version: written before rows were held as JSON) or as this release's JSON."""
    version: object = held.get("json", ROW_JSON_VERSION)
    return version == ROW_JSON_VERSION


def _row(held: Mapping[str, Any], ends: array[int], at: int, codec_options: CodecOptions[Any]) -> bytes:
    """The `at`-th of the rows held (`rows` concatenated, ending at `ends`), as its JSON."""
    row = memoryview(held["rows"])[(ends[at - 1] if at else 0) : ends[at]]
    if "json" in held:
        return bytes(row)
    return sale_row_json(bson.decode(row, codec_options))
