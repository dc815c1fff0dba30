from __future__ import annotations

import pytest

from services.ingest.excel.columns import (
    COLUMN_NAMES,
    COLUMNS,
    column_index,
    column_letters,
    match_header,
    normalize_header,
)

ALIASES = [(spec.name, alias) for spec in COLUMNS for alias in (spec.name, *spec.aliases)]


@pytest.mark.parametrize(("canonical", "alias"), ALIASES)
def test_every_alias_maps_to_its_column(canonical: str, alias: str) -> None:
    for variant in (alias, alias.upper(), f"  {alias.title()}\t"):
        match = match_header(["junk", variant], sheet="S", excel_row=1)
        assert match.positions.get(canonical) == 1, variant


def test_spec_has_fifteen_columns_and_two_required() -> None:
    assert len(COLUMN_NAMES) == 15
    assert COLUMN_NAMES[-1] == "currency"
    assert [c.name for c in COLUMNS if c.required] == ["user_id", "sub_date"]


def test_normalize_header_folds_case_spaces_underscores_and_yo() -> None:
    assert normalize_header(" User_ID ") == "user id"
    assert normalize_header("USER   id") == "user id"
    assert normalize_header("Дата  Рождения") == "дата рождения"
    assert normalize_header("ДАТА ОТПИСКИ") == normalize_header("дата отписки")
    assert normalize_header("Ёлка") == "елка"


def test_order_is_free_and_unknown_columns_are_ignored() -> None:
    header = ["Комментарий", "Дата подписки", 2024.0, "ID пользователя", "", "Статус"]
    match = match_header(header, sheet="S", excel_row=1)
    assert match.errors == ()
    assert match.positions == {"sub_date": 1, "user_id": 3, "status": 5}


def test_missing_required_columns_are_one_error_each_without_row() -> None:
    match = match_header(["имя", "статус"], sheet="Лист1", excel_row=1)
    assert [(e.code, e.column, e.row, e.cell) for e in match.errors] == [
        ("missing_column", "user_id", None, None),
        ("missing_column", "sub_date", None, None),
    ]
    assert all(e.sheet == "Лист1" for e in match.errors)
    assert "дата подписки" in match.errors[1].message


def test_same_column_twice_in_two_languages_is_a_duplicate_at_the_second_cell() -> None:
    header = ["user_id", "sub_date", "сумма", "x", "Purchase_Amount"]
    match = match_header(header, sheet="S", excel_row=3, col_offset=1)
    assert len(match.errors) == 1
    error = match.errors[0]
    assert (error.code, error.column, error.row, error.cell, error.value) == (
        "duplicate_column",
        "purchase_amount",
        3,
        "F3",
        "Purchase_Amount",
    )
    # the first occurrence is kept
    assert match.positions["purchase_amount"] == 2


@pytest.mark.parametrize(
    ("index", "letters"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ"), (702, "AAA"), (16383, "XFD")]
)
def test_column_letters_round_trip(index: int, letters: str) -> None:
    assert column_letters(index) == letters
    assert column_index(letters) == index
