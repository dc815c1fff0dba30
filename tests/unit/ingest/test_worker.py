"""The worker's job on real workbooks (written with openpyxl, read with calamine), in-process."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
from bson import Decimal128, Int64

from services.ingest.excel import ParseJob
from services.ingest.excel.worker import run_job, validate_rows
from tests.unit.ingest.conftest import ENGLISH_HEADER, WriteXlsx

RUSSIAN_HEADER = [
    "ID пользователя",
    "Имя",
    "Товар",
    "Сумма покупки",
    "Логин",
    "Фото",
    "Премиум",
    "Телефон",
    "Дата рождения",
    "Статус",
    "Дата подписки",
    "Дата отписки",
    "Дата действия",
    "Пригласительная ссылка",
]


def job_dict(job: ParseJob, **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "path": str(job.path),
        "spool_path": str(job.spool_path),
        "timezone": job.timezone,
        "currency": job.currency,
        "max_errors": 100,
        "max_rows": 1000,
        "max_columns": 64,
        "memory_bytes": 0,
        "report_id": job.report_id,
        "source_report_id": job.source_report_id,
        "channel_id": job.channel_id,
        "creator_id": job.creator_id,
    }
    data.update(overrides)
    return data


def spooled(path: Path) -> list[dict[str, Any]]:
    with path.open("rb") as fh:
        return list(bson.decode_file_iter(fh, bson.CodecOptions(tz_aware=True)))


def test_russian_headers_end_to_end(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    # Shuffled order and an unknown column in the middle.
    header = [*RUSSIAN_HEADER[10:], "Комментарий", *RUSSIAN_HEADER[:10]]
    sale = [
        datetime(2024, 1, 10, 9, 0),
        "",
        datetime(2024, 1, 12, 18, 30),
        "https://t.me/+AbC",
        "привет",
        777000111.0,
        "Мария",
        "Курс",
        1499.9,
        "@maria",
        "https://t.me/i/m.jpg",
        "да",
        "8 (916) 555-44-33",
        date(1991, 3, 8),
        "продажа",
    ]
    subscriber = ["15.01.2024 10:00", "20.01.2024", "", "", "", "777000222", "", "", "", "", "", "нет", "", "", ""]
    path = write_xlsx([header, sale, [], subscriber], title="Продажи")
    job = make_job(path)
    answer = run_job(job_dict(job))
    assert answer == {"ok": True, "rows": 2, "sheet": "Продажи"}
    docs = spooled(job.spool_path)
    assert docs == [
        {
            "_id": "src1:2",
            "report_id": "rep1",
            "source_report_id": "src1",
            "channel_id": -1001234567890,
            "creator_id": 42,
            "source": "excel",
            "row": 2,
            "user_id": 777000111,
            "customer_key": None,
            "name": "Мария",
            "product": "Курс",
            "username": "maria",
            "photo_url": "https://t.me/i/m.jpg",
            "phone_number": "+89165554433",
            "invite_link": "https://t.me/+AbC",
            "is_premium": True,
            "birthdate": datetime(1991, 3, 8, tzinfo=UTC),
            "status": "sale",
            "purchase_amount": Decimal128(Decimal("1499.90")),
            "currency": "RUB",
            "sub_date": datetime(2024, 1, 10, 9, 0, tzinfo=UTC),
            "unsub_date": None,
            "action_date": datetime(2024, 1, 12, 18, 30, tzinfo=UTC),
            "action_period_ms": (2 * 24 + 9.5) * 3600 * 1000,
            "extra": None,
        },
        {
            "_id": "src1:4",
            "report_id": "rep1",
            "source_report_id": "src1",
            "channel_id": -1001234567890,
            "creator_id": 42,
            "source": "excel",
            "row": 4,
            "user_id": 777000222,
            "customer_key": None,
            "name": None,
            "product": None,
            "username": None,
            "photo_url": None,
            "phone_number": None,
            "invite_link": None,
            "is_premium": False,
            "birthdate": None,
            "status": None,
            "purchase_amount": None,
            "currency": "RUB",
            "sub_date": datetime(2024, 1, 15, 10, 0, tzinfo=UTC),
            "unsub_date": datetime(2024, 1, 20, tzinfo=UTC),
            "action_date": None,
            "action_period_ms": None,
            "extra": None,
        },
    ]
    # BSON types survive the spool: 64-bit ids, Decimal128 money.
    assert isinstance(docs[0]["channel_id"], Int64)
    assert isinstance(docs[0]["user_id"], Int64)
    assert isinstance(docs[1]["user_id"], Int64)
    assert isinstance(docs[0]["action_period_ms"], Int64)


def test_time_zone_of_the_job_applies_to_naive_cells(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    path = write_xlsx([["user_id", "sub_date"], [1, datetime(2024, 6, 1, 12, 0)]])
    job = make_job(path, timezone="Europe/Moscow")
    assert run_job(job_dict(job))["ok"] is True
    assert spooled(job.spool_path)[0]["sub_date"] == datetime(2024, 6, 1, 9, 0, tzinfo=UTC)


def test_errors_carry_sheet_row_cell_and_value(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    rows: list[list[Any]] = [ENGLISH_HEADER]
    for _ in range(10):
        rows.append([1, "n", "p", 10, "u", "", "", "", "", "", datetime(2024, 1, 1), "", "", ""])
    # Excel row 12: an impossible date in sub_date (column K), plus a bad phone (column H)
    rows.append([2, "", "", "", "", "", "", "12", "", "", "31.02.2024", "", "", ""])
    path = write_xlsx(rows)
    job = make_job(path)
    answer = run_job(job_dict(job))
    assert answer["ok"] is False
    assert answer["kind"] == "invalid"
    assert answer["total_errors"] == 2
    assert answer["errors"] == [
        {
            "sheet": "Sheet1",
            "row": 12,
            "column": "phone_number",
            "cell": "H12",
            "value": "12",
            "code": "invalid_phone",
            "message": answer["errors"][0]["message"],
        },
        {
            "sheet": "Sheet1",
            "row": 12,
            "column": "sub_date",
            "cell": "K12",
            "value": "31.02.2024",
            "code": "invalid_date",
            "message": answer["errors"][1]["message"],
        },
    ]


def test_cell_references_follow_a_sheet_that_does_not_start_at_a1(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    path = write_xlsx([["user_id", "sub_date"], ["x", "2024-01-01"]], start_row=3, start_col=2)
    answer = run_job(job_dict(make_job(path)))
    assert [(e["row"], e["cell"], e["code"]) for e in answer["errors"]] == [(4, "B4", "invalid_user_id")]


def test_error_list_is_capped_but_every_error_is_counted(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    rows: list[list[Any]] = [["user_id", "sub_date"]]
    rows += [["bad", "also bad"] for _ in range(30)]
    job = make_job(write_xlsx(rows))
    answer = run_job(job_dict(job, max_errors=5))
    assert answer["total_errors"] == 60
    assert len(answer["errors"]) == 5
    assert [e["cell"] for e in answer["errors"]] == ["A2", "B2", "A3", "B3", "A4"]


def test_nothing_is_spooled_after_the_first_error(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    rows: list[list[Any]] = [["user_id", "sub_date"], [1, "2024-01-01"], ["bad", "2024-01-01"]]
    rows += [[i, "2024-01-01"] for i in range(10)]
    job = make_job(write_xlsx(rows))
    answer = run_job(job_dict(job))
    assert answer["total_errors"] == 1
    assert len(spooled(job.spool_path)) == 1


def test_header_only_sheet_is_one_empty_sheet_error(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    answer = run_job(job_dict(make_job(write_xlsx([ENGLISH_HEADER, [None], [" "]]))))
    assert answer["kind"] == "invalid"
    assert answer["total_errors"] == 1
    (error,) = answer["errors"]
    assert (error["code"], error["row"], error["sheet"]) == ("empty_sheet", None, "Sheet1")


def test_sheet_without_anything_is_empty_too(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    answer = run_job(job_dict(make_job(write_xlsx([]))))
    assert [e["code"] for e in answer["errors"]] == ["empty_sheet"]


def test_missing_and_duplicate_columns_are_reported_alone(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    path = write_xlsx([["Имя", "name", "Статус"], ["a", "b", "nonsense"]])
    answer = run_job(job_dict(make_job(path)))
    assert answer["kind"] == "invalid"
    assert [(e["code"], e["column"], e["row"], e["cell"]) for e in answer["errors"]] == [
        ("duplicate_column", "name", 1, "B1"),
        ("missing_column", "user_id", None, None),
        ("missing_column", "sub_date", None, None),
    ]


def test_too_many_rows_or_columns_is_sheet_too_large(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    rows: list[list[Any]] = [["user_id", "sub_date"]] + [[i, "2024-01-01"] for i in range(6)]
    path = write_xlsx(rows)
    assert run_job(job_dict(make_job(path), max_rows=6))["ok"] is True
    too_long = run_job(job_dict(make_job(path), max_rows=5))
    assert too_long["kind"] == "sheet_too_large"
    too_wide = run_job(job_dict(make_job(path), max_columns=1))
    assert too_wide["kind"] == "sheet_too_large"


def test_row_limit_is_enforced_while_iterating() -> None:
    # A reader that under-reports the sheet's size still cannot feed more than max_rows rows.
    rows = iter([["user_id", "sub_date"]] + [[float(i), "2024-01-01"] for i in range(10)])
    job = {
        "max_rows": 4,
        "max_errors": 10,
        "report_id": "r",
        "source_report_id": "s",
        "channel_id": 1,
        "creator_id": 1,
        "timezone": "UTC",
    }
    answer = validate_rows(rows, sheet="S", col_offset=0, job=job, spool=io.BytesIO())
    assert answer["kind"] == "sheet_too_large"


def test_blank_rows_above_the_header_are_forgiven(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    path = write_xlsx([["user_id", "sub_date"], [5, "2024-01-01"]], start_row=3)
    job = make_job(path)
    assert run_job(job_dict(job)) == {"ok": True, "rows": 1, "sheet": "Sheet1"}
    assert spooled(job.spool_path)[0]["_id"] == "src1:4"


def test_excel_booleans_and_numbers_as_text(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    path = write_xlsx(
        [
            ["user_id", "sub_date", "is_premium", "purchase_amount", "status", "action_date"],
            ["123", 45322.5, True, "10,5", "sale", "2024-02-01"],
        ]
    )
    job = make_job(path)
    assert run_job(job_dict(job))["ok"] is True
    (doc,) = spooled(job.spool_path)
    assert doc["is_premium"] is True
    assert doc["user_id"] == 123
    assert doc["sub_date"] == datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
    assert doc["purchase_amount"] == Decimal128(Decimal("10.50"))


def test_currency_column_signs_and_the_jobs_currency(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    path = write_xlsx(
        [
            ["ID пользователя", "Дата подписки", "Статус", "Сумма", "Валюта"],
            [1, "2024-01-01", "продажа", "R$ 49,90", ""],
            [2, "2024-01-01", "продажа", 100, "usd"],
            [3, "2024-01-01", "продажа", 100, ""],
            [4, "2024-01-01", "", "", ""],
        ]
    )
    job = make_job(path, currency="EUR")
    assert run_job(job_dict(job))["ok"] is True
    assert [(d["user_id"], d["currency"]) for d in spooled(job.spool_path)] == [
        (1, "BRL"),
        (2, "USD"),
        (3, "EUR"),
        (4, "EUR"),
    ]
    assert all(d["action_date"] is None for d in spooled(job.spool_path))


def test_currency_errors_are_named_cells(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    path = write_xlsx(
        [
            ["user_id", "sub_date", "status", "purchase_amount", "currency"],
            [1, "2024-01-01", "sale", "R$ 49,90", "RUB"],
            [2, "2024-01-01", "sale", 10, "dollars"],
        ]
    )
    answer = run_job(job_dict(make_job(path)))
    assert answer["kind"] == "invalid"
    assert [(e["code"], e["cell"]) for e in answer["errors"]] == [
        ("currency_mismatch", "E2"),
        ("invalid_currency", "E3"),
    ]
