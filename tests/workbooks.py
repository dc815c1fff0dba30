"""Builds small workbooks for tests with openpyxl (the way a user's Excel export looks)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from openpyxl import Workbook

RU_HEADERS = [
    "ID пользователя", "Имя", "Продукт", "Сумма покупки", "Юзернейм", "Фото", "Премиум", "Телефон",
    "Дата рождения", "Статус", "Дата подписки", "Дата отписки", "Дата действия", "Пригласительная ссылка",
]  # fmt: skip
EN_HEADERS = [
    "user_id", "name", "product", "purchase_amount", "username", "photo_url", "is_premium", "phone_number",
    "birthdate", "status", "sub_date", "unsub_date", "action_date", "invite_link",
]  # fmt: skip


def workbook_bytes(headers: Sequence[str], rows: Sequence[Sequence[Any]], sheet: str = "Лист1") -> bytes:
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = sheet
    ws.append(list(headers))
    for row in rows:
        ws.append(list(row))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# A campaign computed by hand in tests/e2e/test_upload_report.py (budget 1000):
# users 101..105 (101 twice), 2 sales by 2 buyers (300.00 + 200.50), 1 lead, 1 funnel.
CAMPAIGN_ROWS: list[list[Any]] = [
    [101, "Анна", "Курс", "300.00", "@anna", None, "да", "8 (900) 123-45-67", "1990-05-01", "продажа",
     "2024-01-01 10:00", None, "2024-01-03 10:00", "https://t.me/+abc"],
    [101, "Анна", "Курс", None, "@anna", None, "да", None, None, "лид",
     "2024-01-01 10:00", None, "2024-01-02 10:00", "https://t.me/+abc"],
    [102, "Борис", "Курс", "200.50", "boris", None, "нет", None, None, "Продажа",
     "31.01.2024", None, "04.02.2024", None],
    [103, "Вера", None, None, None, None, "нет", None, None, "воронка",
     "2024-02-01 00:00", None, "2024-02-01 12:00", "https://t.me/+abc"],
    [104, "Глеб", None, None, None, None, "нет", None, None, None,
     "2024-02-02", "2024-02-10", None, None],
    [105, None, None, None, "", None, "нет", None, None, None, "2024-02-03", None, None, None],
]  # fmt: skip
