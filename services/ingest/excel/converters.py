"""Cell converters: one raw reader value → the stored value. Pure, no I/O.

Readers hand out `str` (`''` for an empty cell), `float` (calamine returns every number as a
float), `int` (some formats), `bool`, `datetime`, `date`, `time` and `timedelta`.

Every converter returns the converted value, or None for an empty cell, and raises `CellInvalid`
for a value it cannot accept. Invalid cells are rare, so raising costs nothing on the hot path
(a `try` is free in Python 3.11) while valid cells never pay for a status check.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bson import Decimal128, Int64

from shared.currency import CurrencyInvalid, normalise_currency

Converter = Callable[[Any], Any]

INT64_MIN: Final = -(2**63)
INT64_MAX: Final = 2**63 - 1
# Longer text is certainly not a name or a link; it would also bloat a stored document towards
# MongoDB's 16 MB cap.
MAX_TEXT_LENGTH: Final = 2048
MIN_YEAR: Final = 1900
MAX_YEAR: Final = 2100
# Amounts are kept below 10^15 so that quantizing to cents stays exact in the default
# 28-digit decimal context (and far inside Decimal128's 34 digits).
MAX_AMOUNT: Final = Decimal(10) ** 15
_CENT: Final = Decimal("0.01")


class CellInvalid(ValueError):
    """A cell value that cannot be accepted: `code` is the API error code, `reason` finishes
    the sentence "<column> ..." of the error message."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------- helpers


def display_value(value: object) -> str | None:
    """The cell as the user sees it in Excel, for the error item's `value` (≤ 100 chars)."""
    if value is None or value == "":
        return None
    text: str
    if isinstance(value, bool):
        text = "TRUE" if value else "FALSE"
    elif isinstance(value, float):
        text = str(int(value)) if value.is_integer() else format(value, ".15g")
    elif isinstance(value, datetime):
        text = value.isoformat(sep=" ")
    elif isinstance(value, date | time):
        text = value.isoformat()
    else:
        text = str(value)
    return text[:100]


def _number_text(value: float) -> str:
    # Excel shows at most 15 significant digits; 123.0 is shown as 123.
    return str(int(value)) if value.is_integer() else format(value, ".15g")


# --------------------------------------------------------------------------- text


def to_text(value: Any) -> str | None:
    t = type(value)
    if t is str:
        s: str = value.strip()
        if not s:
            return None
        if len(s) > MAX_TEXT_LENGTH:
            raise CellInvalid("too_long", f"is longer than {MAX_TEXT_LENGTH} characters")
        return s
    if t is float:
        return _number_text(value)
    if t is int:
        return str(value)
    if t is bool:
        return "TRUE" if value else "FALSE"
    if t is datetime or t is date or t is time:
        return str(value.isoformat())
    if value is None:
        return None
    return str(value)


def to_username(value: Any) -> str | None:
    """Telegram username without the leading `@` (the file may have it or not)."""
    s = to_text(value)
    if s is None:
        return None
    s = s.removeprefix("@").strip()
    return s or None


# Scheme, a non-empty authority, then anything without whitespace.
_HTTP_URL = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?", re.IGNORECASE)


def to_url(value: Any) -> str | None:
    s = to_text(value)
    if s is None:
        return None
    if _HTTP_URL.fullmatch(s) is None:
        raise CellInvalid("invalid_url", "must be an http:// or https:// URL")
    return s


# --------------------------------------------------------------------------- phone

# Separators people type inside phone numbers; deleted before the digits are checked.
_PHONE_SEPARATORS: Final = str.maketrans("", "", " \t\u00a0()-.")


def to_phone(value: Any) -> str | None:
    """Phone → `+` and digits. Excel often stores phones as numbers, so whole floats are fine."""
    t = type(value)
    if t is str:
        s = value.strip()
        if not s:
            return None
        digits = (s[1:] if s[0] == "+" else s).translate(_PHONE_SEPARATORS)
        if not (digits.isascii() and digits.isdigit()):
            raise CellInvalid("invalid_phone", "may only contain digits, spaces, +, -, ( ) and dots")
    elif (t is float and value.is_integer() and value >= 0) or (t is int and value >= 0):
        digits = str(int(value))
    else:
        raise CellInvalid("invalid_phone", "is not a phone number")
    if not 7 <= len(digits) <= 15:
        raise CellInvalid("invalid_phone", "must have between 7 and 15 digits")
    return f"+{digits}"


# --------------------------------------------------------------------------- booleans, status

_TRUE_WORDS: Final = frozenset({"true", "1", "yes", "да"})
_FALSE_WORDS: Final = frozenset({"false", "0", "no", "нет"})


def to_bool(value: Any) -> bool | None:
    t = type(value)
    if t is bool:
        return bool(value)
    if t is str:
        s = value.strip().casefold()
        if not s:
            return None
        if s in _TRUE_WORDS:
            return True
        if s in _FALSE_WORDS:
            return False
    elif (t is float or t is int) and value in (0, 1):
        return bool(value == 1)
    raise CellInvalid("invalid_boolean", "must be true/false, 1/0, yes/no or да/нет")


_STATUS_WORDS: Final = {
    "lead": "lead",
    "sale": "sale",
    "funnel": "funnel",
    "лид": "lead",
    "продажа": "sale",
    "воронка": "funnel",
}


def to_status(value: Any) -> str | None:
    """Empty status is a subscriber without action (None)."""
    if type(value) is str:
        s = value.strip().casefold()
        if not s:
            return None
        status = _STATUS_WORDS.get(s)
        if status is not None:
            return status
    raise CellInvalid("invalid_status", "must be one of lead, sale, funnel (лид, продажа, воронка) or empty")


# --------------------------------------------------------------------------- numbers

_INTEGER_TEXT = re.compile(r"[+-]?\d{1,20}")


def to_user_id(value: Any) -> Int64 | None:
    """Telegram user id: a 64-bit integer, as a whole number cell or as digits in text."""
    t = type(value)
    if t is float:
        if value.is_integer():
            n = int(value)
            if INT64_MIN <= n <= INT64_MAX:
                return Int64(n)
    elif t is str:
        s = value.strip()
        if not s:
            return None
        if _INTEGER_TEXT.fullmatch(s) is not None:
            n = int(s)
            if INT64_MIN <= n <= INT64_MAX:
                return Int64(n)
    elif t is int and INT64_MIN <= value <= INT64_MAX:
        return Int64(value)
    raise CellInvalid("invalid_user_id", "must be a whole number (a 64-bit Telegram user id)")


def parse_money(value: Any) -> Decimal | None:
    """Money ≥ 0 with at most 2 decimals, exact.

    A float cell is read through its 15 significant digits, which is what Excel displays:
    19.99 becomes Decimal("19.99"), and a formula artefact like 0.30000000000000004 becomes 0.3
    instead of a spurious precision error. Text accepts a comma as the decimal separator and
    spaces as thousands separators (`1 234,50`).
    """
    t = type(value)
    if t is float:
        d = Decimal(format(value, ".15g"))
    elif t is str:
        s = value.strip()
        if not s:
            return None
        s = s.replace(" ", "").replace("\u00a0", "").replace("\u202f", "")
        if "," in s and "." not in s:
            s = s.replace(",", ".")
        try:
            d = Decimal(s)
        except InvalidOperation:
            raise CellInvalid("invalid_amount", "is not a number") from None
    elif t is int:
        d = Decimal(value)
    else:
        raise CellInvalid("invalid_amount", "is not a number")
    if not d.is_finite():
        raise CellInvalid("invalid_amount", "is not a number")
    if d < 0:
        raise CellInvalid("negative_amount", "must not be negative")
    if d >= MAX_AMOUNT:
        raise CellInvalid("invalid_amount", "is too large")
    q = d.quantize(_CENT)
    if q != d:
        raise CellInvalid("amount_precision", "must have at most 2 decimal places")
    return q


# Decimal128 BID layout for a non-negative coefficient c < 2^113 and exponent e:
# high word = (e + 6176) << 49 | c >> 64, low word = c & (2^64 - 1). Building the words directly
# is ~5x faster than Decimal128(Decimal) (pure Python), which matters at a million rows.
_CENTS_HIGH: Final = (6176 - 2) << 49
_LOW_MASK: Final = (1 << 64) - 1
_FLOAT_MAX_AMOUNT: Final = 1e15


def decimal128_cents(cents: int) -> Decimal128:
    """A non-negative number of cents → Decimal128 with exponent -2 (e.g. 1999 → 19.99)."""
    # Decimal128((high, low)) is pymongo's raw-words constructor (what from_bid calls after
    # unpacking bytes); the stub only types the Decimal-tuple form.
    return Decimal128((_CENTS_HIGH | (cents >> 64), cents & _LOW_MASK))  # type: ignore[arg-type]


# A currency sign or code before or after the number: `R$ 49,90`, `$10`, `1990.50 ₽`, `1 990 руб.`,
# `49.90 BRL`. The sign is anything that is neither a digit nor a separator of the number.
_SIGN_BEFORE = re.compile(r"\s*([^\d\s.,+-][^\d]*?)\s*([+-]?\d[\d\s\u00a0\u202f.,]*)\s*")
_SIGN_AFTER = re.compile(r"\s*([+-]?\d[\d\s\u00a0\u202f.,]*?)\s*([^\d\s.,+-][^\d]*?)\s*")
_CURRENCY_REASON: Final = "is not an ISO 4217 currency code or a known currency symbol (₽, руб, R$, $, €)"


def split_currency_sign(text: str) -> tuple[str, str] | None:
    """`R$ 49,90` → ("49,90", "BRL"); None when the text carries no sign at all (a plain number
    or garbage, left to `parse_money`). A sign that names no currency is `invalid_currency`."""
    match = _SIGN_BEFORE.fullmatch(text)
    if match is not None:
        sign, number = match.groups()
    else:
        match = _SIGN_AFTER.fullmatch(text)
        if match is None:
            return None
        number, sign = match.groups()
    try:
        return number, normalise_currency(sign)
    except CurrencyInvalid:
        raise CellInvalid("invalid_currency", f"has a currency sign {sign!r} that {_CURRENCY_REASON}") from None


def to_money(value: Any) -> Decimal128 | tuple[Decimal128, str] | None:
    """An amount cell → Decimal128 cents; an amount written with its currency (`R$ 49,90`) →
    (cents, ISO code), so that the row can take its currency from the cell."""
    t = type(value)
    if t is float and 0 <= value < _FLOAT_MAX_AMOUNT:
        # Fast path for number cells, same rule as parse_money: the 15 significant digits
        # Excel shows, at most two of them after the point.
        text = format(value, ".15g")
        if "e" not in text:
            whole, _, frac = text.partition(".")
            if len(frac) <= 2:
                return decimal128_cents(int(whole) * 100 + int(frac.ljust(2, "0")))
    elif t is str:
        s = value.strip()
        # Only text that does not both start and end with a digit can hold a sign.
        if s and not (s[0].isdigit() and s[-1].isdigit()) and (signed := split_currency_sign(s)) is not None:
            number, code = signed
            amount = parse_money(number)
            if amount is not None:  # always: the pattern requires a digit
                return decimal128_cents(int(amount.scaleb(2))), code
    amount = parse_money(value)
    return None if amount is None else decimal128_cents(int(amount.scaleb(2)))


def to_currency(value: Any) -> str | None:
    """The `currency` column: an ISO 4217 code or a symbol (`RUB`, `₽`, `руб`, `R$`, `$`, `€`)."""
    if type(value) is str:
        s = value.strip()
        if not s:
            return None
        try:
            return normalise_currency(s)
        except CurrencyInvalid:
            pass
    elif value is None:
        return None
    raise CellInvalid("invalid_currency", _CURRENCY_REASON)


# --------------------------------------------------------------------------- dates

EXCEL_EPOCH: Final = datetime(1899, 12, 30)
# Serial numbers of 1900-01-01 and 2101-01-01: the sane range of dates in a sales file.
_SERIAL_MIN: Final = (datetime(MIN_YEAR, 1, 1) - EXCEL_EPOCH).days
_SERIAL_END: Final = (datetime(MAX_YEAR + 1, 1, 1) - EXCEL_EPOCH).days
_MS_PER_DAY: Final = 86_400_000
_DOTTED = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?")
_DATE_REASON: Final = "is not a valid date (use 2024-01-31, 31.01.2024, 31.01.2024 14:05 or an Excel date)"


def _invalid_date(reason: str = _DATE_REASON) -> CellInvalid:
    return CellInvalid("invalid_date", reason)


def _round_ms(value: datetime) -> datetime:
    # MongoDB keeps milliseconds; readers can hand out 14:04:59.999999 for 14:05 because Excel
    # stores times as fractions of a day.
    us = value.microsecond
    ms_us = (us + 500) // 1000 * 1000
    if ms_us == us:
        return value
    if ms_us == 1_000_000:
        return value.replace(microsecond=0) + timedelta(seconds=1)
    return value.replace(microsecond=ms_us)


def _from_serial(value: float) -> datetime:
    # NaN and infinities fail the comparison too.
    if not _SERIAL_MIN <= value < _SERIAL_END:
        raise _invalid_date(f"is a number outside the dates {MIN_YEAR}..{MAX_YEAR}")
    return EXCEL_EPOCH + timedelta(milliseconds=round(value * _MS_PER_DAY))


def parse_local_datetime(value: Any) -> datetime | None:
    """Raw cell → datetime, naive (local to the file) or aware (text with an offset)."""
    t = type(value)
    if t is datetime:
        dt: datetime = value
    elif t is date:
        dt = datetime(value.year, value.month, value.day)
    elif t is float or t is int:
        dt = _from_serial(float(value))
    elif t is str:
        s = value.strip()
        if not s:
            return None
        m = _DOTTED.fullmatch(s)
        try:
            if m is not None:
                day, month, year, hour, minute, second = m.groups()
                dt = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
            else:
                dt = datetime.fromisoformat(s)
        except ValueError:  # 31.02.2024, 25:00, garbage
            raise _invalid_date() from None
    else:  # bool, time of day, duration
        raise _invalid_date()
    if not MIN_YEAR <= dt.year <= MAX_YEAR:
        raise _invalid_date(f"is outside the years {MIN_YEAR}..{MAX_YEAR}")
    return _round_ms(dt) if dt.microsecond else dt


def load_zone(name: str) -> tzinfo:
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def make_datetime_converter(zone: tzinfo) -> Converter:
    """Converter to UTC-aware datetimes; naive values are wall-clock times in `zone`."""

    def local_to_utc(value: Any) -> datetime | None:
        dt = parse_local_datetime(value)
        if dt is None:
            return None
        if dt.tzinfo is None:
            return dt.replace(tzinfo=zone).astimezone(UTC)
        return dt.astimezone(UTC)

    if zone is not UTC:
        return local_to_utc

    def utc_to_utc(value: Any) -> datetime | None:
        # Fast path: a real date cell, whole milliseconds, in a UTC file.
        if (
            type(value) is datetime
            and value.tzinfo is None
            and not value.microsecond
            and MIN_YEAR <= value.year <= MAX_YEAR
        ):
            return value.replace(tzinfo=UTC)
        if value == "":
            return None
        dt = parse_local_datetime(value)
        if dt is None:
            return None
        return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)

    return utc_to_utc


def to_birthdate(value: Any) -> datetime | None:
    """A calendar date, stored as midnight UTC. A time part is dropped, not shifted by a zone:
    a birthday does not move with the uploader's time zone."""
    if type(value) is date and MIN_YEAR <= value.year <= MAX_YEAR:
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    dt = parse_local_datetime(value)
    if dt is None:
        return None
    return datetime(dt.year, dt.month, dt.day, tzinfo=UTC)
