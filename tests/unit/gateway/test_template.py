"""The Excel upload template, read back with openpyxl."""

from __future__ import annotations

import io
from datetime import datetime

import openpyxl
import pytest
from openpyxl.worksheet.datavalidation import DataValidation

from services.gateway.template import COLUMNS, DATA_SHEET, HELP_SHEET, build_template_workbook

# SPEC §3, in its order: the template must offer exactly these.
SPEC_COLUMNS = [
    "user_id", "name", "product", "purchase_amount", "username", "photo_url", "is_premium",
    "phone_number", "birthdate", "status", "sub_date", "unsub_date", "action_date", "invite_link", "currency",
]  # fmt: skip


@pytest.fixture(scope="module")
def workbook() -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(build_template_workbook()))


def validation_for(ws, letter: str) -> DataValidation:
    matches = [dv for dv in ws.data_validations.dataValidation if f"{letter}2" in dv.sqref]
    assert len(matches) == 1, f"expected one validation on column {letter}"
    return matches[0]


def test_first_sheet_has_the_spec_columns_as_header(workbook) -> None:
    assert workbook.sheetnames == [DATA_SHEET, HELP_SHEET]
    ws = workbook.worksheets[0]
    assert [c.value for c in ws[1]] == SPEC_COLUMNS
    assert ws.freeze_panes == "A2"


def test_status_and_is_premium_have_list_validations(workbook) -> None:
    ws = workbook[DATA_SHEET]
    header = [c.value for c in ws[1]]
    status_letter = openpyxl.utils.get_column_letter(header.index("status") + 1)
    premium_letter = openpyxl.utils.get_column_letter(header.index("is_premium") + 1)
    status = validation_for(ws, status_letter)
    assert status.type == "list"
    assert status.formula1 == '"lead,sale,funnel"'
    assert status.allow_blank  # empty status = subscriber without action
    premium = validation_for(ws, premium_letter)
    assert premium.type == "list"
    assert premium.formula1 == '"true,false"'
    # The ranges cover many data rows, not just the examples.
    assert f"{status_letter}5000" in status.sqref
    assert f"{premium_letter}5000" in premium.sqref
    assert f"{status_letter}1" not in status.sqref  # the header is not validated
    assert len(ws.data_validations.dataValidation) == 2


def test_three_example_rows_are_valid_upload_rows(workbook) -> None:
    ws = workbook[DATA_SHEET]
    header = [c.value for c in ws[1]]
    rows = [dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert len(rows) == 3
    assert {r["status"] for r in rows} == {None, "lead", "sale"}
    for row in rows:
        assert isinstance(row["user_id"], int)
        assert isinstance(row["sub_date"], datetime)
        assert row["is_premium"] in ("true", "false")
        if row["status"] is not None:
            assert isinstance(row["action_date"], datetime)
            assert row["action_date"] >= row["sub_date"]
    sale = next(r for r in rows if r["status"] == "sale")
    assert sale["purchase_amount"] > 0
    sub_col = header.index("sub_date") + 1
    amount_col = header.index("purchase_amount") + 1
    assert ws.cell(row=2, column=sub_col).number_format == "yyyy-mm-dd hh:mm"
    assert ws.cell(row=4, column=amount_col).number_format == "#,##0.00"


def test_second_sheet_explains_every_column_in_english_and_russian(workbook) -> None:
    ws = workbook[HELP_SHEET]
    header = [c.value for c in ws[1]]
    assert header[:5] == ["Column", "Required", "Type", "Aliases accepted", "Description"]
    assert header[5:] == ["Обязательна", "Тип", "Описание"]
    described = {r[0]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True) if r[0]}
    for name in SPEC_COLUMNS:
        row = described[name]
        assert row["Type"] and row["Тип"] and row["Description"] and row["Описание"]
        assert row["Required"] in ("yes", "no", "no (false)", "for sale rows", "no (the report's currency)")
    assert described["user_id"]["Required"] == "yes"
    assert described["sub_date"]["Required"] == "yes"
    assert described["name"]["Required"] == "no"
    assert "дата подписки" in described["sub_date"]["Aliases accepted"]
    assert "сумма покупки" in described["purchase_amount"]["Aliases accepted"]
    assert described["user_id"]["Обязательна"] == "да"


def test_column_table_matches_the_header() -> None:
    assert [c.name for c in COLUMNS] == SPEC_COLUMNS
    assert all(c.aliases for c in COLUMNS)


def test_template_columns_agree_with_what_ingest_reads() -> None:
    """The gateway does not import ingest (separate services), so the two tables are kept in step here."""
    from services.ingest.excel.columns import COLUMNS as INGEST_COLUMNS

    assert [(c.name, c.aliases) for c in COLUMNS] == [(c.name, c.aliases) for c in INGEST_COLUMNS]
    assert [c.required_en == "yes" for c in COLUMNS] == [c.required for c in INGEST_COLUMNS]
