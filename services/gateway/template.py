"""The downloadable Excel template: the columns of SPEC §3 with drop-down lists where the values are
a closed set, three example rows, and a second sheet that explains every column in English and Russian.

Pure: builds bytes, no I/O. The first sheet is exactly what ingest reads (header in row 1), so the
template uploaded unchanged is a valid file.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Final

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation

from services.gateway.export import DATE_FORMAT, DATETIME_FORMAT, ID_FORMAT, MONEY_FORMAT

DATA_SHEET: Final = "Sales"
HELP_SHEET: Final = "Columns"
STATUS_VALUES: Final = ("lead", "sale", "funnel")
BOOLEAN_VALUES: Final = ("true", "false")
# Validations cover this many data rows; Excel stores a range, so the size costs nothing.
VALIDATED_ROWS: Final = 100_000


@dataclass(frozen=True)
class TemplateColumn:
    name: str
    aliases: tuple[str, ...]
    type_en: str
    type_ru: str
    required_en: str
    required_ru: str
    description_en: str
    description_ru: str
    number_format: str | None = None
    width: int = 14


# SPEC §3, in its order.
COLUMNS: Final[tuple[TemplateColumn, ...]] = (
    TemplateColumn("user_id", ("id пользователя", "пользователь"),
                   "integer (Telegram user id, 64-bit)", "целое число (Telegram user id, 64 бита)",
                   "yes", "да", "Telegram id of the user", "Telegram id пользователя", ID_FORMAT, 14),
    TemplateColumn("name", ("имя",), "text", "текст", "no", "нет", "Name of the user", "Имя пользователя"),
    TemplateColumn("product", ("продукт", "товар"), "text", "текст", "no", "нет",
                   "Product bought or offered", "Купленный или предложенный продукт"),
    TemplateColumn("purchase_amount", ("сумма", "сумма покупки"),
                   "money ≥ 0 (a currency sign is fine: 1990.50 ₽, R$ 49,90)",
                   "деньги ≥ 0 (можно со знаком валюты: 1990.50 ₽, R$ 49,90)",
                   "for sale rows", "для строк-продаж", "Amount paid", "Сумма покупки", MONEY_FORMAT, 16),
    TemplateColumn("username", ("юзернейм", "логин"), "text (with or without @)", "текст (с @ или без)",
                   "no", "нет", "Telegram username", "Имя пользователя в Telegram (username)"),
    TemplateColumn("photo_url", ("фото",), "URL", "URL", "no", "нет", "Link to the user's photo",
                   "Ссылка на фото пользователя", None, 24),
    TemplateColumn("is_premium", ("премиум",), "boolean: true/false, 1/0, да/нет, yes/no",
                   "логическое: true/false, 1/0, да/нет, yes/no", "no (false)", "нет (false)",
                   "Whether the user has Telegram Premium", "Есть ли у пользователя Telegram Premium", None, 11),
    TemplateColumn("phone_number", ("телефон",), "text, normalised to digits with leading +",
                   "текст, приводится к цифрам с + в начале", "no", "нет", "Phone number", "Номер телефона",
                   None, 16),
    TemplateColumn("birthdate", ("дата рождения",), "date", "дата", "no", "нет", "Date of birth",
                   "Дата рождения", DATE_FORMAT, 12),
    TemplateColumn("status", ("статус",), "lead, sale, funnel (лид, продажа, воронка); empty = subscriber",
                   "lead, sale, funnel (лид, продажа, воронка); пусто = подписчик", "no", "нет",
                   "What the user did; empty means a subscriber without action",
                   "Что сделал пользователь; пусто — подписчик без действия", None, 10),
    TemplateColumn("sub_date", ("дата подписки",), "datetime", "дата и время", "yes", "да",
                   "When the user subscribed", "Когда пользователь подписался", DATETIME_FORMAT, 18),
    TemplateColumn("unsub_date", ("дата отписки",), "datetime, not before sub_date",
                   "дата и время, не раньше даты подписки", "no", "нет", "When the user unsubscribed",
                   "Когда пользователь отписался", DATETIME_FORMAT, 18),
    TemplateColumn("action_date", ("дата действия",), "datetime, not before sub_date",
                   "дата и время, не раньше даты подписки", "no", "нет",
                   "When the lead, sale or funnel entry happened", "Когда произошли лид, продажа или вход в воронку",
                   DATETIME_FORMAT, 18),
    TemplateColumn("invite_link", ("пригласительная ссылка", "ссылка"), "text", "текст", "no", "нет",
                   "Invite link the user joined by", "Пригласительная ссылка, по которой пришёл пользователь",
                   None, 26),
    TemplateColumn("currency", ("валюта",), "ISO 4217 code or symbol (RUB, ₽, руб, R$, $, €)",
                   "код ISO 4217 или знак (RUB, ₽, руб, R$, $, €)", "no (the report's currency)",
                   "нет (валюта отчёта)", "Currency of purchase_amount", "Валюта суммы покупки", None, 10),
)  # fmt: skip

# Three rows covering the three cases a seller has: a plain subscriber, a lead, a sale.
EXAMPLE_ROWS: Final[tuple[dict[str, object], ...]] = (
    {"user_id": 123456789, "name": "Ivan", "username": "@ivan", "is_premium": "false",
     "sub_date": datetime(2024, 1, 10, 9, 30), "invite_link": "https://t.me/+AbCdEf123"},
    {"user_id": 223456789, "name": "Maria", "product": "Course", "username": "maria", "is_premium": "true",
     "phone_number": "+79991234567", "birthdate": date(1990, 5, 17), "status": "lead",
     "sub_date": datetime(2024, 1, 11, 12, 0), "action_date": datetime(2024, 1, 12, 18, 15),
     "invite_link": "https://t.me/+AbCdEf123"},
    {"user_id": 323456789, "name": "Olga", "product": "Course", "purchase_amount": Decimal("4990.00"),
     "is_premium": "false", "status": "sale", "sub_date": datetime(2024, 1, 12, 8, 0),
     "action_date": datetime(2024, 1, 15, 20, 45), "invite_link": "https://t.me/+AbCdEf123", "currency": "RUB"},
)  # fmt: skip

NOTES_EN: Final = (
    "Header names are matched case-insensitively, in English or Russian; column order does not matter; "
    "unknown columns are ignored. Only the first sheet is read."
)
NOTES_RU: Final = (
    "Заголовки сравниваются без учёта регистра, на английском или русском; порядок столбцов не важен; "
    "неизвестные столбцы игнорируются. Читается только первый лист."
)

_BOLD: Final = Font(bold=True)
_HEADER_FILL: Final = PatternFill("solid", fgColor="DDEBF7")
_WRAP: Final = Alignment(wrap_text=True, vertical="top")


def column_letter(name: str) -> str:
    """Excel letter of a template column."""
    return str(get_column_letter([c.name for c in COLUMNS].index(name) + 1))


def _list_validation(values: tuple[str, ...], column: str, title: str) -> DataValidation:
    # Excel wants the literal list quoted and comma-separated; blank stays allowed (optional columns).
    # A warning, not a stop: the parser also accepts the Russian and 1/0 spellings, which a seller
    # may type on purpose.
    validation = DataValidation(
        type="list",
        formula1='"' + ",".join(values) + '"',
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="warning",
        errorTitle=title,
        error=f"Allowed values: {', '.join(values)}",
        promptTitle=title,
        prompt=", ".join(values),
        showInputMessage=True,
    )
    letter = column_letter(column)
    validation.add(f"{letter}2:{letter}{VALIDATED_ROWS + 1}")
    return validation


def build_template_workbook() -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.title = DATA_SHEET

    ws.append([c.name for c in COLUMNS])
    for cell in ws[1]:
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
    for example in EXAMPLE_ROWS:
        ws.append([example.get(c.name) for c in COLUMNS])
    for col, column in enumerate(COLUMNS, 1):
        letter = get_column_letter(col)
        ws.column_dimensions[letter].width = max(column.width, len(column.name) + 2)
        if column.number_format is not None:
            for row in range(2, len(EXAMPLE_ROWS) + 2):
                ws.cell(row=row, column=col).number_format = column.number_format
    ws.freeze_panes = "A2"
    ws.add_data_validation(_list_validation(STATUS_VALUES, "status", "status"))
    ws.add_data_validation(_list_validation(BOOLEAN_VALUES, "is_premium", "is_premium"))

    help_ws = wb.create_sheet(HELP_SHEET)
    headers = (
        "Column", "Required", "Type", "Aliases accepted", "Description",
        "Обязательна", "Тип", "Описание",
    )  # fmt: skip
    help_ws.append(headers)
    for cell in help_ws[1]:
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
    for column in COLUMNS:
        help_ws.append([
            column.name, column.required_en, column.type_en, ", ".join(column.aliases), column.description_en,
            column.required_ru, column.type_ru, column.description_ru,
        ])  # fmt: skip
    help_ws.append([])
    help_ws.append(["Notes", "", NOTES_EN])
    help_ws.append(["Примечания", "", NOTES_RU])
    for col in range(1, len(headers) + 1):
        letter = get_column_letter(col)
        longest = max(len(str(c.value or "")) for c in help_ws[letter][: len(COLUMNS) + 1])
        help_ws.column_dimensions[letter].width = min(max(longest, 8) + 2, 50)
        for cell in help_ws[letter][1:]:
            cell.alignment = _WRAP
    help_ws.freeze_panes = "B2"

    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()
