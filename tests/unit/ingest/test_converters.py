from __future__ import annotations

import random
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, Int64

from services.ingest.excel.converters import (
    CellInvalid,
    decimal128_cents,
    display_value,
    load_zone,
    make_datetime_converter,
    parse_money,
    to_birthdate,
    to_bool,
    to_money,
    to_phone,
    to_status,
    to_text,
    to_url,
    to_user_id,
    to_username,
)

to_utc = make_datetime_converter(UTC)
to_moscow = make_datetime_converter(load_zone("Europe/Moscow"))


def code_of(convert: Any, value: Any) -> str:
    with pytest.raises(CellInvalid) as info:
        convert(value)
    return info.value.code


# --------------------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (datetime(2024, 1, 31, 14, 5), datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        (date(2024, 1, 31), datetime(2024, 1, 31, tzinfo=UTC)),
        ("2024-01-31", datetime(2024, 1, 31, tzinfo=UTC)),
        ("31.01.2024", datetime(2024, 1, 31, tzinfo=UTC)),
        ("1.2.2024", datetime(2024, 2, 1, tzinfo=UTC)),
        ("31.01.2024 14:05", datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        ("31.01.2024 14:05:09", datetime(2024, 1, 31, 14, 5, 9, tzinfo=UTC)),
        ("2024-01-31 14:05", datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        ("2024-01-31 14:05:09", datetime(2024, 1, 31, 14, 5, 9, tzinfo=UTC)),
        ("2024-01-31T14:05:00", datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        ("2024-01-31T14:05:00Z", datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        ("2024-01-31T14:05:00+03:00", datetime(2024, 1, 31, 11, 5, tzinfo=UTC)),
        ("  2024-01-31  ", datetime(2024, 1, 31, tzinfo=UTC)),
        # Excel serial numbers (epoch 1899-12-30): 45322 is 2024-01-31, .5868055… is 14:05
        (45322.0, datetime(2024, 1, 31, tzinfo=UTC)),
        (45322, datetime(2024, 1, 31, tzinfo=UTC)),
        (45322 + (14 * 60 + 5) / 1440, datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        # readers may hand out 14:04:59.9999996 for 14:05; kept to the millisecond
        (datetime(2024, 1, 31, 14, 4, 59, 999_900), datetime(2024, 1, 31, 14, 5, tzinfo=UTC)),
        (datetime(2024, 1, 31, 14, 5, 0, 123_400), datetime(2024, 1, 31, 14, 5, 0, 123_000, tzinfo=UTC)),
        ("", None),
        ("   ", None),
    ],
)
def test_datetime_forms(raw: Any, expected: datetime | None) -> None:
    assert to_utc(raw) == expected
    if expected is not None:
        assert to_utc(raw).tzinfo is not None


@pytest.mark.parametrize(
    "raw",
    [
        "31.02.2024",
        "2024-02-30",
        "32.01.2024",
        "31.01.2024 25:00",
        "yesterday",
        "2024/01/31x",
        True,
        time(14, 5),
        timedelta(hours=1),
        0.5,
        1.0,
        80000.0,
        -3.0,
        float("nan"),
        float("inf"),
        datetime(1850, 1, 1),
        "01.01.2150",
        date(2200, 1, 1),
    ],
)
def test_invalid_dates(raw: Any) -> None:
    assert code_of(to_utc, raw) == "invalid_date"


def test_naive_datetimes_are_read_in_the_configured_zone() -> None:
    assert to_moscow(datetime(2024, 1, 31, 14, 5)) == datetime(2024, 1, 31, 11, 5, tzinfo=UTC)
    assert to_moscow("31.01.2024 14:05") == datetime(2024, 1, 31, 11, 5, tzinfo=UTC)
    assert to_moscow(date(2024, 1, 31)) == datetime(2024, 1, 30, 21, 0, tzinfo=UTC)
    # an explicit offset wins over the zone
    assert to_moscow("2024-01-31T14:05:00Z") == datetime(2024, 1, 31, 14, 5, tzinfo=UTC)
    result = to_moscow(45322.0)
    assert result == datetime(2024, 1, 30, 21, 0, tzinfo=UTC)
    assert result.utcoffset() == timedelta(0)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown time zone"):
        load_zone("Mars/Olympus")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (date(1990, 5, 1), datetime(1990, 5, 1, tzinfo=UTC)),
        (datetime(1990, 5, 1, 23, 30), datetime(1990, 5, 1, tzinfo=UTC)),
        ("01.05.1990", datetime(1990, 5, 1, tzinfo=UTC)),
        ("1990-05-01T23:30:00+05:00", datetime(1990, 5, 1, tzinfo=UTC)),
        (32994.0, datetime(1990, 5, 1, tzinfo=UTC)),
        ("", None),
    ],
)
def test_birthdate_is_midnight_utc_of_the_written_date(raw: Any, expected: datetime | None) -> None:
    assert to_birthdate(raw) == expected


def test_birthdate_rejects_impossible_dates() -> None:
    assert code_of(to_birthdate, "30.02.1990") == "invalid_date"


# --------------------------------------------------------------------------- booleans, status


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        (1.0, True),
        (0.0, False),
        (1, True),
        ("да", True),
        ("Нет", False),
        ("Yes", True),
        (" no ", False),
        ("", None),
    ],
)
def test_booleans(raw: Any, expected: bool | None) -> None:
    assert to_bool(raw) is expected


@pytest.mark.parametrize("raw", ["maybe", 2.0, 0.5, "y", datetime(2024, 1, 1)])
def test_invalid_booleans(raw: Any) -> None:
    assert code_of(to_bool, raw) == "invalid_boolean"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("lead", "lead"),
        ("SALE", "sale"),
        (" Funnel ", "funnel"),
        ("лид", "lead"),
        ("Продажа", "sale"),
        ("ВОРОНКА", "funnel"),
        ("", None),
        ("  ", None),
    ],
)
def test_statuses(raw: str, expected: str | None) -> None:
    assert to_status(raw) == expected


@pytest.mark.parametrize("raw", ["refund", "sales", 1.0, True])
def test_invalid_statuses(raw: Any) -> None:
    assert code_of(to_status, raw) == "invalid_status"


# --------------------------------------------------------------------------- money


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (19.99, Decimal("19.99")),
        (0.1 + 0.2, Decimal("0.30")),  # float artefact of a formula, shown as 0.3 by Excel
        (100.0, Decimal("100.00")),
        (0.0, Decimal("0.00")),
        (1234567.89, Decimal("1234567.89")),
        (5, Decimal("5.00")),
        ("19.99", Decimal("19.99")),
        ("19,99", Decimal("19.99")),
        ("1 234,50", Decimal("1234.50")),
        ("1\u00a0234.5", Decimal("1234.50")),
        ("19.990", Decimal("19.99")),
        ("", None),
    ],
)
def test_money_is_exact(raw: Any, expected: Decimal | None) -> None:
    assert parse_money(raw) == expected
    stored = to_money(raw)
    if expected is None:
        assert stored is None
    else:
        assert isinstance(stored, Decimal128)
        assert stored.to_decimal() == expected
        assert str(stored) == str(expected.quantize(Decimal("0.01")))


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (-1.0, "negative_amount"),
        ("-5", "negative_amount"),
        (19.999, "amount_precision"),
        ("1.005", "amount_precision"),
        (1e-05, "amount_precision"),
        ("abc", "invalid_amount"),
        ("NaN", "invalid_amount"),
        ("Infinity", "invalid_amount"),
        (float("nan"), "invalid_amount"),
        (float("inf"), "invalid_amount"),
        (1e16, "invalid_amount"),
        (True, "invalid_amount"),
        (datetime(2024, 1, 1), "invalid_amount"),
    ],
)
def test_invalid_money(raw: Any, code: str) -> None:
    assert code_of(to_money, raw) == code


def test_fast_decimal128_matches_pymongo_for_random_amounts() -> None:
    rnd = random.Random(7)
    for _ in range(2000):
        cents = rnd.randrange(0, 10**17)
        amount = Decimal(cents).scaleb(-2)
        assert decimal128_cents(cents) == Decimal128(amount)
        assert decimal128_cents(cents).bid == Decimal128(amount).bid
    for _ in range(2000):
        value = round(rnd.uniform(0, 10**6), rnd.choice([0, 1, 2]))
        assert to_money(value) == Decimal128(parse_money(value) or Decimal(0))


# --------------------------------------------------------------------------- user id, phone, url, text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (123456789.0, 123456789),
        (123456789, 123456789),
        ("123456789", 123456789),
        (" 42 ", 42),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("", None),
    ],
)
def test_user_ids(raw: Any, expected: int | None) -> None:
    result = to_user_id(raw)
    assert result == expected
    if expected is not None:
        assert isinstance(result, Int64)


@pytest.mark.parametrize(
    "raw",
    [
        1.5,
        "abc",
        "12a",
        "1.5",
        "9223372036854775808",
        2.0**63,
        float("inf"),
        float("nan"),
        True,
        2**64,
        datetime(2024, 1, 1),
    ],
)
def test_invalid_user_ids(raw: Any) -> None:
    assert code_of(to_user_id, raw) == "invalid_user_id"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+7 (916) 123-45-67", "+79161234567"),
        ("8 916 123 45 67", "+89161234567"),
        ("79161234567", "+79161234567"),
        (79161234567.0, "+79161234567"),
        ("1234567", "+1234567"),
        ("+123456789012345", "+123456789012345"),
        ("", None),
    ],
)
def test_phones(raw: Any, expected: str | None) -> None:
    assert to_phone(raw) == expected


@pytest.mark.parametrize(
    "raw", ["123456", "+1234567890123456", "call me", "+7 916 ++1234567", 7.5, -79161234567.0, "٣٣٣٣٣٣٣"]
)
def test_invalid_phones(raw: Any) -> None:
    assert code_of(to_phone, raw) == "invalid_phone"


def test_urls() -> None:
    assert to_url("https://t.me/i/userpic/1.jpg") == "https://t.me/i/userpic/1.jpg"
    assert to_url(" HTTP://example.com ") == "HTTP://example.com"
    assert to_url("") is None
    for bad in ["ftp://x.org/a.jpg", "t.me/pic.jpg", "https://", "https:// x.org", "javascript:alert(1)", 5.0]:
        assert code_of(to_url, bad) == "invalid_url", bad


def test_text_and_username() -> None:
    assert to_text("  Ivan  ") == "Ivan"
    assert to_text(123.0) == "123"
    assert to_text(1.5) == "1.5"
    assert to_text("   ") is None
    assert to_username("@ivan") == "ivan"
    assert to_username("ivan") == "ivan"
    assert to_username("@") is None
    assert code_of(to_text, "x" * 5000) == "too_long"


def test_display_value_is_what_excel_shows_truncated() -> None:
    assert display_value(123456789.0) == "123456789"
    assert display_value(19.99) == "19.99"
    assert display_value(True) == "TRUE"
    assert display_value(datetime(2024, 1, 31, 14, 5)) == "2024-01-31 14:05:00"
    assert display_value(date(2024, 1, 31)) == "2024-01-31"
    assert display_value("") is None
    long = display_value("y" * 500)
    assert long is not None
    assert len(long) == 100


def test_aware_input_other_zone_converts_to_utc() -> None:
    tz = timezone(timedelta(hours=-3))
    assert to_utc(datetime(2024, 1, 31, 9, 0, tzinfo=tz)) == datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
