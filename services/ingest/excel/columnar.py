"""Column-wise validation and BSON building of a whole sheet (fastexcel → Arrow → bytes).

Why: the row validator (validate.py) and `bson.encode` per row cost more than reading the sheet
at a million rows (docs/benchmarks.md, "Parsing", where the time goes). Here every column is checked
and converted at once with pyarrow compute kernels, and the stored documents are assembled as
BSON bytes by the same kernels (`binary_join_element_wise`), a column at a time. pymongoarrow,
MongoDB's own Arrow bridge, was looked at first: its `write` still turns every row into a Python
dict and calls `bson.encode` on it (its open ticket ARROW-102 asks for exactly what this does),
only writes flat documents to a synchronous collection, and cannot nest rows in chunks.

The row validator stays the one place that produces error items, and the judge of every row
this module is not sure of:
  * a cell that the vectorised checks do not accept as it is (text with spaces around it, a
    phone written as a number, a date as text, ...) sends its row to `RowValidator.validate`
    with the very values calamine would have handed it (the reader's value types are kept);
    the document it returns is put back into the columns;
  * a file where any such row has an error, or which does not have the plain shape this module
    handles (header in row 1 under distinct names, one value type per column, a zone other than
    UTC, a sheet over the caps), is not decided here at all (`None`): the worker then parses it
    the way it always has, so the error list of a bad file is exactly today's by construction.

Equivalence with the row validator is tested on seeded random workbooks
(tests/unit/ingest/test_columnar.py). The contract-16 rules (a `currency` column, `action_date`
optional) follow the column table: they apply as soon as columns.py knows a `currency` column.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Final

import bson
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from bson import Decimal128, Int64

from services.ingest.excel import converters
from services.ingest.excel.columns import COLUMN_NAMES, match_header
from services.ingest.excel.converters import CellInvalid
from services.ingest.excel.validate import ErrorSink, RowValidator
from shared.sale_chunks import CHUNK_FIELDS, CHUNK_ROWS
from shared.sale_rows import ACTION_STATUSES, MS_PER_DAY

# Contract 16 (issue 16): rows carry their currency and `action_date` is optional for every
# status once the column table has a `currency` column.
CURRENCY_RULES: Final = "currency" in COLUMN_NAMES

_EPOCH: Final = datetime(1970, 1, 1)
_MS: Final = timedelta(milliseconds=1)
# 1900-01-01 and 2101-01-01 in ms since the epoch: the years converters accept.
_MIN_MS: Final = (datetime(converters.MIN_YEAR, 1, 1) - _EPOCH) // _MS
_END_MS: Final = (datetime(converters.MAX_YEAR + 1, 1, 1) - _EPOCH) // _MS
# Python's str.isspace() set, as an RE2 class: text with any of these at either end is left to
# the row validator (which strips it), so what is kept here needs no trimming at all.
_WS: Final = r"\t-\r\x1c-\x20\x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}\x{205f}\x{3000}"
_EDGE_SPACE: Final = f"^[{_WS}]|[{_WS}]$"
_URL: Final = f"(?i)^https?://[^{_WS}/?#]+(?:[/?#][^{_WS}]*)?$"
_PHONE_SEPARATORS: Final = "[ \t\u00a0().-]"
_TEXT_COLUMNS: Final = ("name", "product", "username", "photo_url", "phone_number", "invite_link", "status", "currency")
_DATE_COLUMNS: Final = ("birthdate", "sub_date", "unsub_date", "action_date")
# The Arrow types whose values are exactly what calamine hands the row validator (a float is a
# float, a string a string, null an empty cell). A timestamp only stands for calamine's value
# in a date column: calamine says `date` for a date-only cell where Arrow says midnight, which
# the date converters treat alike and the text converters do not.
_PLAIN_TYPES: Final = (pa.string(), pa.large_string(), pa.float64(), pa.bool_(), pa.null())
_FIRST_ROW = re.compile(rb"<(?:\w+:)?row\b([^>]*)>(.*?)</(?:\w+:)?row>", re.DOTALL)
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_CELL_VALUE = re.compile(rb"<(?:\w+:)?(?:v|t)(?:\s[^>]*)?>[^<]")
_SHEET_HEAD_READ: Final = 64 * 1024
_CENTS_HIGH_WORD: Final = int.from_bytes(converters.decimal128_cents(0).bid[8:16], "little")


@dataclass(frozen=True, slots=True)
class Sheet:
    """A first sheet as fastexcel read it: its columns, the sheet column of the first one."""

    name: str
    table: pa.Table
    col_offset: int


def header_in_first_row(path: Path) -> bool:
    """Whether the first sheet's first row element is row 1 and holds a value: fastexcel names
    the columns after the first row of the used range, so this is what makes its data row `i`
    sheet row `i + 2`. Anything unclear is False (the caller parses the file the old way)."""
    from services.ingest.excel.sniff import _first_sheet

    try:
        with zipfile.ZipFile(path) as zf:
            _, part = _first_sheet(zf, {info.filename for info in zf.infolist()})
            if part is None:
                return False
            with zf.open(part) as fh:
                head = fh.read(_SHEET_HEAD_READ)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, RuntimeError, NotImplementedError):
        return False
    first = _FIRST_ROW.search(head)
    if first is None:
        return False
    number = _ROW_NUMBER.search(first.group(1))
    return number is not None and number.group(1) == b"1" and _CELL_VALUE.search(first.group(2)) is not None


def read_sheet(path: Path, fmt: str) -> Sheet | None:
    """The first sheet as Arrow columns, or None when fastexcel cannot give it in a shape this
    module handles. Raises what the reader raises for a damaged file (the worker reports it)."""
    import fastexcel

    if fmt != "xlsx" or not header_in_first_row(path):
        return None
    reader = fastexcel.read_excel(str(path))
    names = reader.sheet_names
    if not names:
        return None
    try:
        # strict: a column holding two value types is not typed here (calamine keeps each cell's).
        sheet = reader.load_sheet(0, dtype_coercion="strict", schema_sample_rows=None)
        infos = sheet.available_columns()
        table = pa.table(sheet.to_arrow())
    except fastexcel.UnsupportedColumnTypeCombinationError:
        return None
    offset = infos[0].absolute_index if infos else 0
    for i, info in enumerate(infos):
        if info.absolute_index != offset + i or info.column_name_from not in ("looked_up", "generated"):
            return None
    return Sheet(name=str(names[0]), table=table, col_offset=offset)


def _renamed_duplicates(names: Sequence[str]) -> bool:
    """fastexcel renames a repeated header `x` to `x_1`; the row validator's header check must
    see the repetition, so such a file is not handled here."""
    present = set(names)
    return any((m := re.fullmatch(r"(.*)_\d+", n)) is not None and m.group(1) in present for n in names)


# --------------------------------------------------------------------------- BSON pieces


def _b(data: bytes) -> pa.Scalar[Any]:
    return pa.scalar(data, pa.binary())


def _const(key: str, value: Any) -> bytes:
    """The BSON element of one constant field, exactly as `bson.encode` writes it."""
    return bson.encode({key: value})[4:-1]


def _key(type_byte: int, key: str) -> bytes:
    return bytes([type_byte]) + key.encode() + b"\x00"


def _u8(values: np.ndarray[Any, Any], dtype: str) -> np.ndarray[Any, Any]:
    """Values → an (n, width) byte matrix of their little-endian representation."""
    raw = np.ascontiguousarray(values.astype(dtype, copy=False))
    return raw.view(np.uint8).reshape(len(raw), raw.dtype.itemsize)


def _binary(matrix: np.ndarray[Any, Any]) -> pa.Array:
    """An (n, width) byte matrix → n binary values of `width` bytes."""
    n, width = matrix.shape
    flat = np.ascontiguousarray(matrix)
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(width), n, [None, pa.py_buffer(flat)]).cast(pa.binary())


class DocumentBuilder:
    """Builds one BSON document per row from its elements, with one `binary_join_element_wise`.

    Fixed-width parts in a row (keys, numbers, dates, string lengths) are laid out side by side
    in a byte matrix with numpy, so the join only concatenates those blocks and the strings.
    Nullable elements (`null` is a different element: type 0x0A and no value) become small
    variable pieces of their own."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[bytes | np.ndarray[Any, Any] | pa.Array] = []

    def const(self, data: bytes) -> None:
        self.parts.append(data)

    def fixed(self, key: str, type_byte: int, matrix: np.ndarray[Any, Any], nulls: np.ndarray[Any, Any] | None) -> None:
        if nulls is None or not nulls.any():
            self.parts += [_key(type_byte, key), matrix]
            return
        head = np.frombuffer(_key(type_byte, key), np.uint8)
        full = np.empty((self.n, len(head) + matrix.shape[1]), np.uint8)
        full[:, : len(head)] = head
        full[:, len(head) :] = matrix
        self.parts.append(pc.if_else(pa.array(nulls), _b(_key(0x0A, key)), _binary(full)))

    def string(self, key: str, values: pa.Array) -> None:
        binary = values.cast(pa.binary())
        lengths = pc.add(pc.binary_length(binary).fill_null(0), 1).to_numpy(zero_copy_only=False)
        if not values.null_count:
            self.parts += [_key(0x02, key), _u8(lengths, "<i4"), binary, b"\x00"]
            return
        head = np.frombuffer(_key(0x02, key), np.uint8)
        full = np.empty((self.n, len(head) + 4), np.uint8)
        full[:, : len(head)] = head
        full[:, len(head) :] = _u8(lengths, "<i4")
        valid = values.is_valid()
        self.parts += [
            pc.if_else(valid, _binary(full), _b(_key(0x0A, key))),
            binary,
            pc.if_else(valid, _b(b"\x00"), _b(b"")),
        ]

    def build(self, prefix: pa.Array | None = None) -> pa.Array:
        """The documents (int32 length, elements, 0x00), each after its `prefix` value if any."""
        n = self.n
        length = np.full(n, 5, np.int64)
        for part in self.parts:
            if isinstance(part, bytes):
                length += len(part)
            elif isinstance(part, np.ndarray):
                length += part.shape[1]
            else:
                length += pc.binary_length(part).fill_null(0).to_numpy(zero_copy_only=False)
        parts: list[bytes | np.ndarray[Any, Any] | pa.Array] = [_u8(length, "<i4"), *self.parts, b"\x00"]
        pieces: list[pa.Scalar[Any] | pa.Array] = [] if prefix is None else [prefix]
        block: list[bytes | np.ndarray[Any, Any]] = []

        def flush() -> None:
            if not block:
                return
            if all(isinstance(x, bytes) for x in block):
                pieces.append(_b(b"".join(x for x in block if isinstance(x, bytes))))
            else:
                widths = [len(x) if isinstance(x, bytes) else x.shape[1] for x in block]
                matrix = np.empty((n, sum(widths)), np.uint8)
                at = 0
                for x, w in zip(block, widths, strict=True):
                    matrix[:, at : at + w] = np.frombuffer(x, np.uint8) if isinstance(x, bytes) else x
                    at += w
                pieces.append(_binary(matrix))
            block.clear()

        for part in parts:
            if isinstance(part, bytes | np.ndarray):
                block.append(part)
            else:
                flush()
                pieces.append(part)
        flush()
        return pc.binary_join_element_wise(*pieces, _b(b""), null_handling="replace", null_replacement=b"")


# --------------------------------------------------------------------------- converted columns


@dataclass
class Columns:
    """The stored values of every row, column by column (after checks and conversion)."""

    user_id: np.ndarray[Any, Any]  # int64
    name: pa.Array
    product: pa.Array
    username: pa.Array
    photo_url: pa.Array
    phone_number: pa.Array
    invite_link: pa.Array
    is_premium: np.ndarray[Any, Any]  # bool
    birthdate: pa.Array  # int64 ms, nullable
    status: pa.Array  # string, nullable
    amount_bid: pa.Array  # fixed 16 bytes, nullable
    amount_cents: np.ndarray[Any, Any]  # int64, 0 where null
    currency: pa.Array  # string
    sub_date: pa.Array  # int64 ms
    unsub_date: pa.Array
    action_date: pa.Array

    def take(self, indices: pa.Array) -> Columns:
        idx = indices.to_numpy()
        return Columns(
            **{
                name: (value[idx] if isinstance(value, np.ndarray) else value.take(indices))
                for name, value in vars(self).items()
            }
        )


def _null_column(n: int, typ: pa.DataType) -> pa.Array:
    return pa.nulls(n, typ)


def _text(values: pa.Array | None, n: int) -> tuple[pa.Array, pa.Array]:
    """Plain text: (value or null, accepted). Empty is null; text with spaces at an end or over
    the length cap is not accepted here."""
    if values is None or values.type == pa.null():
        return _null_column(n, pa.string()), pa.array(np.ones(n, bool))
    if values.type not in (pa.string(), pa.large_string()):
        return _null_column(n, pa.string()), values.is_null()
    values = values.cast(pa.string())
    empty = pc.equal(values, "")
    too_long = pc.greater(pc.utf8_length(values), converters.MAX_TEXT_LENGTH)
    bad = pc.or_(pc.match_substring_regex(values, _EDGE_SPACE), too_long)
    ok = pc.invert(bad.fill_null(False))
    return pc.if_else(empty, pa.scalar(None, pa.string()), values), ok


def _mapped(values: pa.Array | None, n: int, convert: Any) -> tuple[pa.Array, pa.Array]:
    """A low-cardinality text column through its own converter, once per distinct value."""
    if values is None or values.type == pa.null():
        return _null_column(n, pa.string()), pa.array(np.ones(n, bool))
    if values.type not in (pa.string(), pa.large_string()):
        return _null_column(n, pa.string()), values.is_null()
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    out: list[str | None] = []
    good: list[bool] = []
    for text in encoded.dictionary.to_pylist():
        try:
            out.append(convert(text))
            good.append(True)
        except CellInvalid:
            out.append(None)
            good.append(False)
    indices = encoded.indices
    mapped = pa.array(out, pa.string()).take(indices)
    ok = pa.array(good, pa.bool_()).take(indices).fill_null(True)
    return mapped, ok


class _NotHere(Exception):
    """A converted value this module does not store itself (left to the row validator)."""


# Converted text values of this process's file (the worker reads one file), by converter kind and
# text: a file read in parts (segments.py) converts a value repeated across parts once, as the
# whole sheet would. Bounded: past `_MEMO_CAP` values the rest are converted each time.
_MEMO: dict[tuple[str, str], tuple[Any, bool]] = {}
_MEMO_CAP: Final = 100_000


def _by_value(values: pa.Array, convert: Any, represent: Any, typ: pa.DataType, kind: str) -> tuple[pa.Array, pa.Array]:
    """A text column through the row validator's own converter, once per distinct value: exact by
    construction, and cheap where values repeat (dates to the minute, amounts, yes/no words).
    `represent` turns a converted value into this module's column type (None stays None); `kind`
    names the converter in the memo."""
    encoded = pc.dictionary_encode(values.cast(pa.string()))
    out: list[Any] = []
    good: list[bool] = []
    memo = _MEMO
    for text in encoded.dictionary.to_pylist():
        known = memo.get((kind, text))
        if known is None:
            try:
                value = convert(text)
                known = (None if value is None else represent(value), True)
            except (CellInvalid, _NotHere):
                known = (None, False)
            if len(memo) < _MEMO_CAP:
                memo[(kind, text)] = known
        out.append(known[0])
        good.append(known[1])
    indices = encoded.indices
    return pa.array(out, typ).take(indices), pa.array(good, pa.bool_()).take(indices).fill_null(True)


_UTC_EPOCH: Final = _EPOCH.replace(tzinfo=UTC)


def _aware_ms(value: datetime) -> int:
    return (value - _UTC_EPOCH) // _MS


def _money_cents(value: Any) -> int:
    # to_money gives Decimal128 of cents with exponent -2; anything else (issue 16's amount with
    # its currency sign) is the row validator's to place.
    if type(value) is not Decimal128:
        raise _NotHere
    bid = value.bid
    if int.from_bytes(bid[8:16], "little") != _CENTS_HIGH_WORD:
        raise _NotHere
    return int.from_bytes(bid[:8], "little")


def _dates(values: pa.Array | None, n: int, convert: Any, kind: str) -> tuple[pa.Array, pa.Array]:
    """A date column in a UTC file: (ms since the epoch or null, accepted)."""
    if values is None or values.type == pa.null():
        return _null_column(n, pa.int64()), pa.array(np.ones(n, bool))
    if values.type in (pa.string(), pa.large_string()):
        return _by_value(values, convert, _aware_ms, pa.int64(), kind)
    if not pa.types.is_timestamp(values.type) or values.type.tz is not None:
        return _null_column(n, pa.int64()), values.is_null()
    ms = values.cast(pa.timestamp("ms")).cast(pa.int64())
    ok = pc.and_(pc.greater_equal(ms, _MIN_MS), pc.less(ms, _END_MS)).fill_null(True)
    return ms, ok


def convert_columns(
    table: pa.Table, positions: dict[str, int], default_currency: str
) -> tuple[Columns, np.ndarray[Any, Any]]:
    """Every column checked and converted at once: (the columns, per-row "accepted as is")."""
    n = table.num_rows

    def col(name: str) -> pa.Array | None:
        if name not in positions:
            return None
        chunked = table.column(positions[name])
        return chunked.combine_chunks() if isinstance(chunked, pa.ChunkedArray) else chunked

    oks: list[pa.Array] = []
    # user_id: required, a whole number inside int64.
    raw_uid = col("user_id")
    if raw_uid is not None and raw_uid.type == pa.float64():
        v = raw_uid.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            good = np.isfinite(v) & (np.floor(v) == v) & (v >= -(2.0**63)) & (v < 2.0**63)
        user_id = np.where(good, v, 0).astype(np.int64)
        oks.append(pa.array(good))
    elif raw_uid is not None and raw_uid.type in (pa.string(), pa.large_string()):
        ids, ok = _by_value(raw_uid, converters.to_user_id, int, pa.int64(), "user_id")
        oks.append(pc.and_(ok, ids.is_valid()))
        user_id = ids.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    else:
        user_id = np.zeros(n, np.int64)
        oks.append(pa.array(np.zeros(n, bool)))
    texts: dict[str, pa.Array] = {}
    for name in ("name", "product", "invite_link", "username", "photo_url", "phone_number"):
        texts[name], ok = _text(col(name), n)
        oks.append(ok)
    # username: without the `@`, and nothing left means empty.
    u = texts["username"]
    at = pc.starts_with(u, "@").fill_null(False)
    rest = pc.utf8_slice_codeunits(u, 1)
    oks.append(pc.invert(pc.and_(at, pc.match_substring_regex(rest, f"^[{_WS}]").fill_null(False))))
    u = pc.if_else(at, rest, u)
    texts["username"] = pc.if_else(pc.equal(u, "").fill_null(False), pa.scalar(None, pa.string()), u)
    # photo_url: an http(s) URL.
    oks.append(pc.match_substring_regex(texts["photo_url"], _URL).fill_null(True))
    # phone: `+` and 7..15 digits once the separators people type are gone.
    p = texts["phone_number"]
    body = pc.if_else(pc.starts_with(p, "+").fill_null(False), pc.utf8_slice_codeunits(p, 1), p)
    digits = pc.replace_substring_regex(body, _PHONE_SEPARATORS, "")
    oks.append(pc.match_substring_regex(digits, "^[0-9]{7,15}$").fill_null(True))
    texts["phone_number"] = pc.binary_join_element_wise(pa.scalar("+"), digits, pa.scalar(""))
    # is_premium: a boolean cell; empty is False.
    raw_premium = col("is_premium")
    if raw_premium is None or raw_premium.type == pa.null():
        premium = np.zeros(n, bool)
    elif raw_premium.type == pa.bool_():
        premium = raw_premium.fill_null(False).to_numpy(zero_copy_only=False)
    elif raw_premium.type in (pa.string(), pa.large_string()):
        flags, ok = _by_value(raw_premium, converters.to_bool, bool, pa.bool_(), "bool")
        oks.append(ok)
        premium = flags.fill_null(False).to_numpy(zero_copy_only=False)
    else:
        premium = np.zeros(n, bool)
        oks.append(raw_premium.is_null())
    status, ok = _mapped(col("status"), n, converters.to_status)
    oks.append(ok)
    currency_column = col("currency") if CURRENCY_RULES else None
    if CURRENCY_RULES:
        currency, ok = _mapped(currency_column, n, getattr(converters, "to_currency"))  # noqa: B009
        oks.append(ok)
        currency = currency.fill_null(default_currency)
    else:
        currency = _null_column(n, pa.string())
    # purchase_amount: a number cell, through to_money once per distinct value.
    raw_amount = col("purchase_amount")
    amount_cents = np.zeros(n, np.int64)
    if raw_amount is None or raw_amount.type == pa.null():
        amount_bid = _null_column(n, pa.binary(16))
    elif raw_amount.type == pa.float64():
        # to_money's rule for a number cell: the 15 significant digits Excel shows, at most two
        # after the point. When c = rint(100 v) and the double nearest to c / 100 is v itself,
        # c / 100 (at most 15 digits below 10^13) is the 15-digit decimal nearest to v, i.e. what
        # to_money reads. Anything else (more decimals, a formula artefact like
        # 0.30000000000000004, huge or negative amounts) is left to the row validator.
        v = raw_amount.to_numpy(zero_copy_only=False)
        with np.errstate(invalid="ignore"):
            c = np.rint(v * 100)
            good = (v >= 0) & (v < 1e13) & (c / 100 == v)
        null = np.isnan(v) & raw_amount.is_null().to_numpy(zero_copy_only=False)
        amount_cents = np.where(good, c, 0).astype(np.int64)
        # Decimal128 of cents with exponent -2: low word the cents, high word the exponent.
        bid = np.empty((n, 2), "<u8")
        bid[:, 0] = amount_cents
        bid[:, 1] = _CENTS_HIGH_WORD
        words = pa.py_buffer(np.ascontiguousarray(bid))
        amount_bid = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, words])
        amount_bid = pc.if_else(pa.array(good), amount_bid, pa.scalar(None, pa.binary(16)))
        oks.append(pa.array(good | null))
    elif raw_amount.type in (pa.string(), pa.large_string()):
        cents_array, ok = _by_value(raw_amount, converters.to_money, _money_cents, pa.int64(), "money")
        oks.append(ok)
        amount_cents = cents_array.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        bid = np.empty((n, 2), "<u8")
        bid[:, 0] = amount_cents
        bid[:, 1] = _CENTS_HIGH_WORD
        words = pa.py_buffer(np.ascontiguousarray(bid))
        amount_bid = pa.FixedSizeBinaryArray.from_buffers(pa.binary(16), n, [None, words])
        amount_bid = pc.if_else(cents_array.is_valid(), amount_bid, pa.scalar(None, pa.binary(16)))
    else:
        amount_bid = _null_column(n, pa.binary(16))
        oks.append(raw_amount.is_null())
    dates: dict[str, pa.Array] = {}
    to_dt = converters.make_datetime_converter(UTC)
    for name in _DATE_COLUMNS:
        birth = name == "birthdate"
        dates[name], ok = _dates(col(name), n, converters.to_birthdate if birth else to_dt, name if birth else "utc")
        oks.append(ok)
    # birthdate: the calendar date, as midnight UTC.
    bd = dates["birthdate"].to_numpy(zero_copy_only=False)
    bd_null = dates["birthdate"].is_null().to_numpy(zero_copy_only=False)
    bd = np.where(bd_null, 0, bd).astype(np.int64)
    birthdate = pa.array(bd - np.mod(bd, MS_PER_DAY), mask=bd_null)
    sub, unsub, action = dates["sub_date"], dates["unsub_date"], dates["action_date"]
    # Row rules: sub_date required; unsub/action not before it; a sale has an amount; before
    # contract 16 an action status needs its action_date.
    oks.append(sub.is_valid())
    oks.append(pc.invert(pc.less(unsub, sub).fill_null(False)))
    oks.append(pc.invert(pc.less(action, sub).fill_null(False)))
    oks.append(pc.invert(pc.and_(pc.equal(status, "sale").fill_null(False), amount_bid.is_null())))
    if not CURRENCY_RULES:
        oks.append(pc.invert(pc.and_(status.is_valid(), action.is_null())))
    accepted = np.ones(n, bool)
    for ok in oks:
        accepted &= ok.to_numpy(zero_copy_only=False)
    columns = Columns(
        user_id=user_id,
        name=texts["name"],
        product=texts["product"],
        username=texts["username"],
        photo_url=texts["photo_url"],
        phone_number=texts["phone_number"],
        invite_link=texts["invite_link"],
        is_premium=premium,
        birthdate=birthdate,
        status=status,
        amount_bid=amount_bid,
        amount_cents=amount_cents,
        currency=currency,
        sub_date=sub,
        unsub_date=unsub,
        action_date=action,
    )
    return columns, accepted


# --------------------------------------------------------------------------- rows left to the row validator


def _calamine_value(value: Any) -> Any:
    # calamine hands out '' for an empty cell.
    return "" if value is None else value


def _ms(value: datetime | None) -> int | None:
    return None if value is None else (value.replace(tzinfo=None) - _EPOCH) // _MS


def _put_back(columns: Columns, rows: np.ndarray[Any, Any], docs: Sequence[dict[str, Any]]) -> Columns:
    """The row validator's documents for `rows`, written into the columns at their places."""
    mask = np.zeros(len(columns.user_id), bool)
    mask[rows] = True
    m = pa.array(mask)

    def put(array: pa.Array, values: list[Any], typ: pa.DataType) -> pa.Array:
        return pc.replace_with_mask(array, m, pa.array(values, typ))

    out = Columns(**vars(columns))
    out.user_id = columns.user_id.copy()
    out.user_id[rows] = [int(d["user_id"]) for d in docs]
    out.is_premium = columns.is_premium.copy()
    out.is_premium[rows] = [bool(d["is_premium"]) for d in docs]
    for name in ("name", "product", "username", "photo_url", "phone_number", "invite_link", "status"):
        setattr(out, name, put(getattr(columns, name), [d[name] for d in docs], pa.string()))
    if CURRENCY_RULES:
        out.currency = put(columns.currency, [d["currency"] for d in docs], pa.string())
    for name in ("birthdate", "sub_date", "unsub_date", "action_date"):
        setattr(out, name, put(getattr(columns, name), [_ms(d[name]) for d in docs], pa.int64()))
    amounts = [d["purchase_amount"] for d in docs]
    out.amount_bid = put(columns.amount_bid, [None if a is None else a.bid for a in amounts], pa.binary(16))
    out.amount_cents = columns.amount_cents.copy()
    out.amount_cents[rows] = [0 if a is None else int(a.to_decimal().scaleb(2)) for a in amounts]
    return out


# --------------------------------------------------------------------------- the whole sheet


@dataclass
class Validated:
    """A sheet whose every row is valid: the stored values of its data rows."""

    sheet: str
    columns: Columns
    excel_rows: np.ndarray[Any, Any]  # int64, 1-based sheet row of each kept row
    report_id: str
    source_report_id: str
    channel_id: int
    creator_id: int

    @property
    def rows(self) -> int:
        return len(self.excel_rows)


def validate_sheet(sheet: Sheet, job: dict[str, Any], zone: tzinfo, *, first_row: int = 2) -> Validated | None:
    """The sheet's valid rows, or None when the file is to be parsed the old way (it has an
    error, or a shape this module leaves to the row validator: see the module docstring).
    `first_row` is the sheet row of the table's first row (a later part of the sheet: segments.py)."""
    table = sheet.table
    if zone is not UTC or table.num_rows > job["max_rows"] or sheet.col_offset + table.num_columns > job["max_columns"]:
        return None
    names = table.column_names
    if _renamed_duplicates(names):
        return None
    header_row = 1
    match = match_header(list(names), sheet=sheet.name, excel_row=header_row, col_offset=sheet.col_offset)
    if match.errors:
        return None
    for name, index in match.positions.items():
        typ = table.schema.field(index).type
        if typ not in _PLAIN_TYPES and not (name in _DATE_COLUMNS and pa.types.is_timestamp(typ)):
            return None
    default_currency = str(job.get("currency") or "RUB")
    columns, accepted = convert_columns(table, match.positions, default_currency)
    n = table.num_rows
    excel_rows = np.arange(first_row, first_row + n, dtype=np.int64)
    doubtful = np.flatnonzero(~accepted)
    keep = accepted
    if len(doubtful):
        sink = ErrorSink(job["max_errors"])
        extra: dict[str, Any] = {}
        if CURRENCY_RULES:
            extra["default_currency"] = default_currency
        validator = RowValidator(
            positions=match.positions,
            sheet=sheet.name,
            zone=zone,
            sink=sink,
            report_id=job["report_id"],
            source_report_id=job["source_report_id"],
            channel_id=int(job["channel_id"]),
            creator_id=int(job["creator_id"]),
            col_offset=sheet.col_offset,
            **extra,
        )
        docs: list[dict[str, Any]] = []
        kept: list[int] = []
        for offset in range(0, len(doubtful), 10_000):
            part = doubtful[offset : offset + 10_000]
            for i, values in zip(part, table.take(pa.array(part)).to_pylist(), strict=True):
                doc = validator.validate([_calamine_value(v) for v in values.values()], int(excel_rows[i]))
                if sink.total:
                    return None
                if doc is not None:
                    docs.append(doc)
                    kept.append(int(i))
        keep = accepted.copy()
        if kept:
            rows = np.array(kept, np.int64)
            keep[rows] = True
            columns = _put_back(columns, rows, docs)
    if not keep.any():
        return None  # no data rows: the old path words that error
    if not keep.all():
        index = pa.array(np.flatnonzero(keep))
        columns = columns.take(index)
        excel_rows = excel_rows[keep]
    return Validated(
        sheet=sheet.name,
        columns=columns,
        excel_rows=excel_rows,
        report_id=job["report_id"],
        source_report_id=job["source_report_id"],
        channel_id=int(job["channel_id"]),
        creator_id=int(job["creator_id"]),
    )


# --------------------------------------------------------------------------- documents


def row_documents(
    v: Validated, columns: Columns, excel_rows: np.ndarray[Any, Any], prefix: pa.Array | None = None
) -> pa.Array:
    """The stored sale-row documents (shared/sale_rows.py, field order of RowValidator) as BSON,
    one binary value per row (each after its `prefix` value when given)."""
    n = len(excel_rows)
    doc = DocumentBuilder(n)
    row_text = pa.array(excel_rows).cast(pa.string())
    doc.string("_id", pc.binary_join_element_wise(pa.scalar(f"{v.source_report_id}:"), row_text, pa.scalar("")))
    doc.const(_const("report_id", v.report_id))
    doc.const(_const("source_report_id", v.source_report_id))
    doc.const(_const("channel_id", Int64(v.channel_id)))
    doc.const(_const("creator_id", v.creator_id))
    doc.const(_const("source", "excel"))
    doc.fixed("row", 0x10, _u8(excel_rows, "<i4"), None)
    doc.fixed("user_id", 0x12, _u8(columns.user_id, "<i8"), None)
    doc.const(_const("customer_key", None))
    for name in ("name", "product", "username", "photo_url", "phone_number", "invite_link"):
        doc.string(name, getattr(columns, name))
    doc.fixed("is_premium", 0x08, _u8(columns.is_premium, "u1"), None)

    def date(name: str, values: pa.Array) -> None:
        nulls = values.is_null().to_numpy(zero_copy_only=False)
        doc.fixed(name, 0x09, _u8(values.fill_null(0).to_numpy(zero_copy_only=False), "<i8"), nulls)

    date("birthdate", columns.birthdate)
    doc.string("status", columns.status)
    bid = columns.amount_bid
    bid_matrix = (
        np.frombuffer(bid.buffers()[1], np.uint8, count=n * 16, offset=bid.offset * 16).reshape(n, 16)
        if n
        else np.zeros((0, 16), np.uint8)
    )
    doc.fixed("purchase_amount", 0x13, bid_matrix, bid.is_null().to_numpy(zero_copy_only=False))
    if CURRENCY_RULES:
        doc.string("currency", columns.currency)
    sub = columns.sub_date.to_numpy(zero_copy_only=False)
    doc.fixed("sub_date", 0x09, _u8(sub, "<i8"), None)
    date("unsub_date", columns.unsub_date)
    date("action_date", columns.action_date)
    action_null = columns.action_date.is_null().to_numpy(zero_copy_only=False)
    period = columns.action_date.fill_null(0).to_numpy(zero_copy_only=False) - sub
    doc.fixed("action_period_ms", 0x12, _u8(period, "<i8"), action_null)
    doc.const(_const("extra", None))
    return doc.build(prefix)


def row_batches(v: Validated, batch_rows: int = 10_000) -> Iterator[pa.Array]:
    """The row documents in row order, `batch_rows` at a time (bounded memory)."""
    for start in range(0, v.rows, batch_rows):
        index = pa.array(np.arange(start, min(start + batch_rows, v.rows)))
        yield row_documents(v, v.columns.take(index), v.excel_rows[start : start + batch_rows])


STATUS_ORDER: Final = (None, *ACTION_STATUSES)


def chunk_batches(v: Validated, chunk_rows: int = CHUNK_ROWS, batch_chunks: int = 250) -> Iterator[list[bytes]]:
    """The stored chunks (shared/sale_chunks.py) exactly as `ChunkPacker` makes them from the rows
    in row order, as BSON documents, `batch_chunks` chunks at a time (bounded memory)."""
    return ChunkStream(chunk_rows, batch_chunks).add(v, final=True)


def _concat(a: Validated, b: Validated) -> Validated:
    """The rows of `a`, then those of `b` (same file: same ids and constants)."""
    columns = Columns(
        **{
            name: (
                np.concatenate((value, getattr(b.columns, name)))
                if isinstance(value, np.ndarray)
                else _concat_arrays(value, getattr(b.columns, name))
            )
            for name, value in vars(a.columns).items()
        }
    )
    return replace(b, columns=columns, excel_rows=np.concatenate((a.excel_rows, b.excel_rows)))


def _concat_arrays(a: pa.Array, b: pa.Array) -> pa.Array:
    # A column with no value in one part may have come out null-typed there.
    typ = b.type if pa.types.is_null(a.type) else a.type
    return pa.concat_arrays([a.cast(typ), b.cast(typ)])


class ChunkStream:
    """Chunks of a file whose rows arrive in parts (segments.py), each chunk exactly as
    `ChunkPacker` makes it from all the rows in row order: a status's rows that do not fill a
    chunk yet wait for the next part, and its chunks are numbered on from the last part's."""

    def __init__(self, chunk_rows: int = CHUNK_ROWS, batch_chunks: int = 250) -> None:
        self.chunk_rows = chunk_rows
        self.batch_chunks = batch_chunks
        self.seqs = [0] * len(STATUS_ORDER)
        self.carry: Validated | None = None

    def add(self, v: Validated, *, final: bool) -> Iterator[list[bytes]]:
        """The chunks that `v`'s rows (after those carried over) fill; all of them when `final`."""
        if self.carry is not None:
            v, self.carry = _concat(self.carry, v), None
        status = v.columns.status
        codes = np.zeros(v.rows, np.int8)
        for code, name in enumerate(STATUS_ORDER):
            if name is not None:
                codes[pc.equal(status, name).fill_null(False).to_numpy(zero_copy_only=False)] = code
        order = np.argsort(codes, kind="stable")
        sorted_codes = codes[order]
        starts = np.searchsorted(sorted_codes, np.arange(len(STATUS_ORDER)), side="left")
        ends = np.searchsorted(sorted_codes, np.arange(len(STATUS_ORDER)), side="right")
        bounds: list[tuple[int, int, int, int]] = []  # (start, end) in sorted order, status code, seq
        left: list[np.ndarray[Any, Any]] = []
        for code in range(len(STATUS_ORDER)):
            start, end = int(starts[code]), int(ends[code])
            filled = end if final else start + (end - start) // self.chunk_rows * self.chunk_rows
            for at in range(start, filled, self.chunk_rows):
                bounds.append((at, min(at + self.chunk_rows, end), code, self.seqs[code]))
                self.seqs[code] += 1
            if filled < end:
                left.append(order[filled:end])
        if left:
            self.carry = _take(v, np.sort(np.concatenate(left)))
        return self._build(v, order, bounds)

    def flush(self) -> Iterator[list[bytes]]:
        """The chunks of the rows still carried over (the last part is done)."""
        carry, self.carry = self.carry, None
        return iter(()) if carry is None else self.add(carry, final=True)

    def _build(
        self, v: Validated, order: np.ndarray[Any, Any], bounds: list[tuple[int, int, int, int]]
    ) -> Iterator[list[bytes]]:
        chunk_rows, batch_chunks = self.chunk_rows, self.batch_chunks
        key_table = pa.array([_key(0x03, str(k)) for k in range(chunk_rows)], pa.binary())
        common = b"".join(_const(f, val) for f, val in _chunk_constants(v))
        rows_key = _key(0x04, "rows")
        for b in range(0, len(bounds), batch_chunks):
            part = bounds[b : b + batch_chunks]
            # The part's rows; a status's rows carried over to the next part leave gaps in `order`.
            idx = np.concatenate([order[s:e] for s, e, _, _ in part])
            at = np.cumsum([0] + [e - s for s, e, _, _ in part])
            position = np.concatenate([np.arange(e - s) for s, e, _, _ in part])
            # Each row as an element of the chunk's `rows` array: 0x03, its index, its document.
            keys = key_table.take(pa.array(position))
            elements = row_documents(v, v.columns.take(pa.array(idx)), v.excel_rows[idx], keys)
            data = documents_buffer(elements)
            offsets = np.frombuffer(
                elements.buffers()[1], np.int32, count=len(elements) + 1, offset=elements.offset * 4
            )
            base = int(offsets[0])
            out: list[bytes] = []
            for k, (_, _, code, seq) in enumerate(part):
                body = data[int(offsets[at[k]]) - base : int(offsets[at[k + 1]]) - base]
                head = (
                    _const("_id", f"{v.source_report_id}:{STATUS_ORDER[code] or '-'}:{seq}")
                    + common
                    + _const("status", STATUS_ORDER[code])
                    + _const("seq", seq)
                    + rows_key
                )
                array_len = len(body) + 5
                total = 4 + len(head) + array_len + 1
                out.append(
                    b"".join((total.to_bytes(4, "little"), head, array_len.to_bytes(4, "little"), body, b"\x00\x00"))
                )
            yield out


def _take(v: Validated, rows: np.ndarray[Any, Any]) -> Validated:
    return replace(v, columns=v.columns.take(pa.array(rows)), excel_rows=v.excel_rows[rows])


def _chunk_constants(v: Validated) -> list[tuple[str, Any]]:
    values = {
        "report_id": v.report_id,
        "source_report_id": v.source_report_id,
        "channel_id": Int64(v.channel_id),
        "creator_id": v.creator_id,
        "source": "excel",
    }
    return [(f, values[f]) for f in CHUNK_FIELDS]


def documents_buffer(docs: pa.Array) -> memoryview:
    """The concatenated BSON documents of a binary array, without copying."""
    offsets = np.frombuffer(docs.buffers()[1], dtype=np.int32, count=len(docs) + 1, offset=docs.offset * 4)
    data = docs.buffers()[2]
    return memoryview(data)[int(offsets[0]) : int(offsets[-1])]
