"""The columns of the upload file (SPEC §3) and matching of a header row against them. Pure."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from services.ingest.excel.types import CellError


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    name: str
    aliases: tuple[str, ...]
    # Required columns must be present in the header and filled in every row.
    required: bool = False


COLUMNS: Final[tuple[ColumnSpec, ...]] = (
    ColumnSpec("user_id", ("id пользователя", "пользователь"), required=True),
    ColumnSpec("name", ("имя",)),
    ColumnSpec("product", ("продукт", "товар")),
    ColumnSpec("purchase_amount", ("сумма", "сумма покупки")),
    ColumnSpec("username", ("юзернейм", "логин")),
    ColumnSpec("photo_url", ("фото",)),
    ColumnSpec("is_premium", ("премиум",)),
    ColumnSpec("phone_number", ("телефон",)),
    ColumnSpec("birthdate", ("дата рождения",)),
    ColumnSpec("status", ("статус",)),
    ColumnSpec("sub_date", ("дата подписки",), required=True),
    ColumnSpec("unsub_date", ("дата отписки",)),
    ColumnSpec("action_date", ("дата действия",)),
    ColumnSpec("invite_link", ("пригласительная ссылка", "ссылка")),
    ColumnSpec("currency", ("валюта",)),
)
COLUMN_NAMES: Final[tuple[str, ...]] = tuple(c.name for c in COLUMNS)

_SEPARATORS = re.compile(r"[\s_]+")


def normalize_header(text: str) -> str:
    """Header cell → lookup key: trimmed, case-folded, `ё` as `е`, and runs of spaces or
    underscores as one space, so `User_ID`, ` user id ` and `USER  ID` are the same column."""
    return _SEPARATORS.sub(" ", text.strip().casefold().replace("ё", "е")).strip()


_LOOKUP: Final[dict[str, str]] = {
    normalize_header(alias): spec.name for spec in COLUMNS for alias in (spec.name, *spec.aliases)
}


def column_letters(index: int) -> str:
    """0-based column index → Excel letters (0 → A, 25 → Z, 26 → AA, 16383 → XFD)."""
    letters = ""
    n = index + 1
    while n:
        n, rem = divmod(n - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def column_index(letters: str) -> int:
    """Excel letters → 0-based column index (inverse of column_letters)."""
    n = 0
    for ch in letters.upper():
        n = n * 26 + (ord(ch) - 64)
    return n - 1


@dataclass(frozen=True, slots=True)
class HeaderMatch:
    # canonical column name → 0-based index within the row list handed out by the reader
    positions: dict[str, int]
    errors: tuple[CellError, ...]


def header_text(value: object) -> str:
    """A header cell as text; numbers written as headers are still text to us."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def match_header(cells: Sequence[object], *, sheet: str, excel_row: int, col_offset: int = 0) -> HeaderMatch:
    """Map the header row onto the known columns.

    Unknown headers are ignored. A known column named twice (in any language) is a
    `duplicate_column` error at the second cell; a missing required column is a
    `missing_column` error with no row, as the SPEC asks.
    """
    positions: dict[str, int] = {}
    errors: list[CellError] = []
    for i, raw in enumerate(cells):
        text = header_text(raw)
        name = _LOOKUP.get(normalize_header(text))
        if name is None:
            continue
        if name in positions:
            letters = column_letters(col_offset + i)
            first = column_letters(col_offset + positions[name])
            errors.append(
                CellError(
                    sheet=sheet,
                    row=excel_row,
                    column=name,
                    cell=f"{letters}{excel_row}",
                    value=text[:100],
                    code="duplicate_column",
                    message=f"Column {name} appears twice: in {first}{excel_row} and in {letters}{excel_row}.",
                )
            )
            continue
        positions[name] = i
    for spec in COLUMNS:
        if spec.required and spec.name not in positions:
            names = ", ".join((spec.name, *spec.aliases))
            errors.append(
                CellError(
                    sheet=sheet,
                    row=None,
                    column=spec.name,
                    cell=None,
                    value=None,
                    code="missing_column",
                    message=f"Required column {spec.name} is missing (accepted names: {names}).",
                )
            )
    return HeaderMatch(positions=positions, errors=tuple(errors))
