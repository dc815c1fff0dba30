"""Small workbooks written with openpyxl into tmp_path, and a job for the Excel engine."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from openpyxl import Workbook

from services.ingest.excel import ParseJob

WriteXlsx = Callable[..., Path]

ENGLISH_HEADER = [
    "user_id",
    "name",
    "product",
    "purchase_amount",
    "username",
    "photo_url",
    "is_premium",
    "phone_number",
    "birthdate",
    "status",
    "sub_date",
    "unsub_date",
    "action_date",
    "invite_link",
]


@pytest.fixture
def write_xlsx(tmp_path: Path) -> WriteXlsx:
    counter = iter(range(1_000_000))

    def write(
        rows: Sequence[Sequence[Any]],
        *,
        name: str | None = None,
        title: str = "Sheet1",
        start_row: int = 1,
        start_col: int = 1,
    ) -> Path:
        wb = Workbook()
        ws = wb.active
        assert ws is not None
        ws.title = title
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if value is not None:
                    ws.cell(row=start_row + r, column=start_col + c, value=value)
        path = tmp_path / (name or f"book{next(counter)}.xlsx")
        wb.save(path)
        return path

    return write


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., ParseJob]:
    def make(path: Path, **overrides: Any) -> ParseJob:
        fields: dict[str, Any] = {
            "path": path,
            "spool_path": tmp_path / f"{path.name}.spool",
            "report_id": "rep1",
            "source_report_id": "src1",
            "channel_id": -1001234567890,
            "creator_id": 42,
            "timezone": "UTC",
        }
        fields.update(overrides)
        return ParseJob(**fields)

    return make
