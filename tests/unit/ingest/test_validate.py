"""Row rules of the validator, on plain lists shaped like calamine rows."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from bson import Decimal128, Int64

from services.ingest.excel.columns import COLUMN_NAMES
from services.ingest.excel.validate import ErrorSink, RowValidator

POSITIONS = {name: i for i, name in enumerate(COLUMN_NAMES)}  # user_id=A … sub_date=K … invite_link=N, currency=O
WITHOUT_CURRENCY = {name: i for name, i in POSITIONS.items() if name != "currency"}


def make_validator(
    positions: dict[str, int] | None = None, limit: int = 100, default_currency: str = "RUB"
) -> RowValidator:
    return RowValidator(
        positions=POSITIONS if positions is None else positions,
        sheet="Sheet1",
        zone=UTC,
        sink=ErrorSink(limit),
        report_id="rep",
        source_report_id="src",
        channel_id=-1001234567890,
        creator_id=5,
        default_currency=default_currency,
    )


def row(**cells: Any) -> list[Any]:
    values: dict[str, Any] = dict.fromkeys(COLUMN_NAMES, "")
    values.update(user_id=1001.0, sub_date=datetime(2024, 1, 10, 9, 0))
    values.update(cells)
    return [values[name] for name in COLUMN_NAMES]


def errors_of(validator: RowValidator) -> list[tuple[str, str | None, str | None, int | None]]:
    return [(e.code, e.column, e.cell, e.row) for e in validator.sink.items]


def test_full_row_becomes_the_stored_document() -> None:
    v = make_validator()
    doc = v.validate(
        row(
            name=" Ivan ",
            product="Course",
            purchase_amount=19.99,
            username="@ivan",
            photo_url="https://t.me/p.jpg",
            is_premium="да",
            phone_number="+7 916 123-45-67",
            birthdate=date(1990, 5, 1),
            status="Продажа",
            unsub_date="2024-02-01",
            action_date="10.01.2024 12:30",
            invite_link="https://t.me/+abc",
        ),
        7,
    )
    assert doc == {
        "_id": "src:7",
        "report_id": "rep",
        "source_report_id": "src",
        "channel_id": Int64(-1001234567890),
        "creator_id": 5,
        "source": "excel",
        "row": 7,
        "user_id": Int64(1001),
        "customer_key": None,
        "name": "Ivan",
        "product": "Course",
        "username": "ivan",
        "photo_url": "https://t.me/p.jpg",
        "phone_number": "+79161234567",
        "invite_link": "https://t.me/+abc",
        "is_premium": True,
        "birthdate": datetime(1990, 5, 1, tzinfo=UTC),
        "status": "sale",
        "purchase_amount": Decimal128(Decimal("19.99")),
        "currency": "RUB",
        "sub_date": datetime(2024, 1, 10, 9, 0, tzinfo=UTC),
        "unsub_date": datetime(2024, 2, 1, tzinfo=UTC),
        "action_date": datetime(2024, 1, 10, 12, 30, tzinfo=UTC),
        "action_period_ms": Int64(3.5 * 3600 * 1000),
        "extra": None,
    }
    assert isinstance(doc["channel_id"], Int64)
    assert isinstance(doc["action_period_ms"], Int64)
    assert v.sink.total == 0


def test_subscriber_without_action_has_no_status_and_no_period() -> None:
    doc = make_validator().validate(row(), 2)
    assert doc is not None
    assert doc["status"] is None
    assert doc["is_premium"] is False
    assert doc["action_period_ms"] is None
    assert doc["purchase_amount"] is None


def test_fully_empty_rows_are_skipped_without_error() -> None:
    v = make_validator()
    assert v.validate(row(user_id="", sub_date="  "), 3) is None
    assert v.validate([""] * 14, 4) is None
    assert v.sink.total == 0


def test_short_rows_are_padded() -> None:
    doc = make_validator().validate([1.0], 2)
    assert doc is None  # sub_date missing
    v = make_validator({"user_id": 0, "sub_date": 1})
    assert v.validate([5.0, "2024-01-01"], 2) is not None


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"user_id": ""}, [("required", "user_id", "A9", 9)]),
        ({"sub_date": ""}, [("required", "sub_date", "K9", 9)]),
        ({"sub_date": "31.02.2024"}, [("invalid_date", "sub_date", "K9", 9)]),
        ({"unsub_date": datetime(2024, 1, 9)}, [("date_before_sub_date", "unsub_date", "L9", 9)]),
        ({"status": "lead", "action_date": datetime(2024, 1, 9)}, [("date_before_sub_date", "action_date", "M9", 9)]),
        ({"status": "sale", "action_date": datetime(2024, 1, 11)}, [("missing_amount", "purchase_amount", "D9", 9)]),
        ({"phone_number": "12"}, [("invalid_phone", "phone_number", "H9", 9)]),
        ({"photo_url": "ftp://x"}, [("invalid_url", "photo_url", "F9", 9)]),
        ({"user_id": 1.5}, [("invalid_user_id", "user_id", "A9", 9)]),
        ({"is_premium": "maybe"}, [("invalid_boolean", "is_premium", "G9", 9)]),
        ({"status": "refund"}, [("invalid_status", "status", "J9", 9)]),
        ({"purchase_amount": -1.0}, [("negative_amount", "purchase_amount", "D9", 9)]),
        # an invalid cell does not also produce the rule errors that depend on it
        (
            {"status": "sale", "action_date": "nope", "purchase_amount": "x"},
            [("invalid_amount", "purchase_amount", "D9", 9), ("invalid_date", "action_date", "M9", 9)],
        ),
        # several problems in one row: cell errors in column order, then rules
        (
            {"user_id": "abc", "status": "lead", "unsub_date": datetime(2023, 1, 1)},
            [
                ("invalid_user_id", "user_id", "A9", 9),
                ("date_before_sub_date", "unsub_date", "L9", 9),
            ],
        ),
    ],
)
def test_row_errors_name_code_column_and_cell(cells: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    v = make_validator()
    assert v.validate(row(**cells), 9) is None
    assert errors_of(v) == expected
    assert v.sink.total == len(expected)


def test_error_item_has_value_and_plain_message() -> None:
    v = make_validator()
    v.validate(row(sub_date="31.02.2024"), 12)
    (error,) = v.sink.items
    assert error.to_dict() == {
        "sheet": "Sheet1",
        "row": 12,
        "column": "sub_date",
        "cell": "K12",
        "value": "31.02.2024",
        "code": "invalid_date",
        "message": error.message,
    }
    assert error.message.startswith("sub_date is not a valid date")
    assert error.message.endswith(".")


def test_rule_on_an_absent_optional_column_has_no_cell() -> None:
    positions = {"user_id": 0, "sub_date": 1, "status": 2}
    v = make_validator(positions)
    assert v.validate([1.0, "2024-01-01", "sale"], 4) is None
    assert errors_of(v) == [("missing_amount", "purchase_amount", None, 4)]


def test_sink_counts_everything_but_keeps_only_the_limit() -> None:
    v = make_validator(limit=3)
    for r in range(2, 12):
        v.validate(row(user_id="x"), r)
    assert v.sink.total == 10
    assert [e.row for e in v.sink.items] == [2, 3, 4]


def test_column_offset_shifts_cell_references() -> None:
    v = RowValidator(
        positions={"user_id": 0, "sub_date": 1},
        sheet="S",
        zone=UTC,
        sink=ErrorSink(10),
        report_id="r",
        source_report_id="s",
        channel_id=1,
        creator_id=1,
        col_offset=2,
    )
    v.validate(["", "2024-01-01"], 5)
    assert errors_of(v) == [("required", "user_id", "C5", 5)]


# --------------------------------------------------------------------------- action dates (SPEC §3)


@pytest.mark.parametrize("status", ["sale", "lead", "funnel", "Продажа", "лид", "воронка"])
def test_rows_of_every_status_are_valid_without_an_action_date(status: str) -> None:
    v = make_validator()
    doc = v.validate(row(status=status, purchase_amount=10.0), 4)
    assert doc is not None
    assert doc["action_date"] is None
    assert doc["action_period_ms"] is None  # left out of avg_*
    assert doc["status"] in ("sale", "lead", "funnel")
    assert v.sink.total == 0


def test_an_action_date_before_sub_date_is_still_an_error_without_status() -> None:
    v = make_validator()
    assert v.validate(row(action_date=datetime(2024, 1, 9)), 9) is None
    assert errors_of(v) == [("date_before_sub_date", "action_date", "M9", 9)]


# --------------------------------------------------------------------------- currencies (SPEC §4.1)


@pytest.mark.parametrize(
    ("cells", "amount", "currency"),
    [
        ({"purchase_amount": 10.0}, "10.00", "RUB"),  # neither column nor sign: the report's
        ({"purchase_amount": 10.0, "currency": "usd"}, "10.00", "USD"),
        ({"purchase_amount": 10.0, "currency": " BRL "}, "10.00", "BRL"),
        ({"purchase_amount": 10.0, "currency": "₽"}, "10.00", "RUB"),
        ({"purchase_amount": 10.0, "currency": "руб"}, "10.00", "RUB"),
        ({"purchase_amount": 10.0, "currency": "R$"}, "10.00", "BRL"),
        ({"purchase_amount": 10.0, "currency": "$"}, "10.00", "USD"),
        ({"purchase_amount": 10.0, "currency": "€"}, "10.00", "EUR"),
        ({"purchase_amount": "1990.50 ₽"}, "1990.50", "RUB"),
        ({"purchase_amount": "R$ 49,90"}, "49.90", "BRL"),
        ({"purchase_amount": "1 990 руб."}, "1990.00", "RUB"),
        ({"purchase_amount": "$10"}, "10.00", "USD"),
        ({"purchase_amount": "€ 1 234,50"}, "1234.50", "EUR"),
        ({"purchase_amount": "49.90 BRL"}, "49.90", "BRL"),
        ({"purchase_amount": "R$ 49,90", "currency": "BRL"}, "49.90", "BRL"),  # column and sign agree
        ({"purchase_amount": "$10", "currency": "usd"}, "10.00", "USD"),
        ({"currency": "USD"}, None, "USD"),  # a row without an amount keeps the column's currency
    ],
)
def test_the_rows_currency_is_the_column_else_the_amounts_sign_else_the_reports(
    cells: dict[str, Any], amount: str | None, currency: str
) -> None:
    v = make_validator()
    doc = v.validate(row(status="sale" if amount else "", **cells), 3)
    assert v.sink.items == []
    assert doc is not None
    assert doc["purchase_amount"] == (None if amount is None else Decimal128(Decimal(amount)))
    assert doc["currency"] == currency


def test_a_file_without_a_currency_column_takes_the_reports_currency_or_the_sign() -> None:
    v = make_validator(WITHOUT_CURRENCY, default_currency="BRL")
    plain = v.validate(row(status="sale", purchase_amount="49,90")[:14], 2)
    signed = v.validate(row(status="sale", purchase_amount="$10")[:14], 3)
    no_amount = v.validate(row()[:14], 4)
    assert plain is not None and signed is not None and no_amount is not None
    assert (plain["currency"], signed["currency"], no_amount["currency"]) == ("BRL", "USD", "BRL")
    assert v.sink.total == 0


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ({"currency": "XYZ"}, [("invalid_currency", "currency", "O9", 9)]),
        ({"currency": "dollars?"}, [("invalid_currency", "currency", "O9", 9)]),
        ({"currency": 840.0}, [("invalid_currency", "currency", "O9", 9)]),
        ({"status": "sale", "purchase_amount": "10 xyz"}, [("invalid_currency", "purchase_amount", "D9", 9)]),
        (
            {"status": "sale", "purchase_amount": "R$ 49,90", "currency": "RUB"},
            [("currency_mismatch", "currency", "O9", 9)],
        ),
        ({"status": "sale", "purchase_amount": "$10", "currency": "€"}, [("currency_mismatch", "currency", "O9", 9)]),
        # a bad sign is one error; the mismatch that would depend on it is not reported as well
        (
            {"status": "sale", "purchase_amount": "10 xyz", "currency": "RUB"},
            [("invalid_currency", "purchase_amount", "D9", 9)],
        ),
    ],
)
def test_currency_errors_name_their_cells(cells: dict[str, Any], expected: list[tuple[Any, ...]]) -> None:
    v = make_validator()
    assert v.validate(row(**cells), 9) is None
    assert errors_of(v) == expected


def test_a_currency_mismatch_message_names_both_cells() -> None:
    v = make_validator()
    v.validate(row(status="sale", purchase_amount="R$ 49,90", currency="RUB"), 5)
    (error,) = v.sink.items
    assert error.value == "RUB"
    assert "RUB" in error.message and "BRL" in error.message and "D5" in error.message
