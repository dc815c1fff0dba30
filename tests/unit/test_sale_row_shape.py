"""Every builder of stored sale rows gives exactly the declared `shared.sale_rows.SaleRow` (the
24 seed keys and issue 16's `currency`): the Excel validator and the `sale recorded` event here;
the connectors' normalisation in `sale_row_shape_at_merge.py` until issue 17 merges."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.ingest.excel.columns import COLUMN_NAMES
from services.ingest.excel.validate import ErrorSink, RowValidator
from services.ingest.recorded import row_for
from shared import contracts
from shared.sale_rows import SALE_ROW_KEYS, SaleRow
from tests.shapes import mismatches


def _excel_rows() -> list[dict[str, Any]]:
    validator = RowValidator(
        positions={name: i for i, name in enumerate(COLUMN_NAMES)},
        sheet="Sheet1",
        zone=UTC,
        sink=ErrorSink(10),
        report_id="rep",
        source_report_id="src",
        channel_id=-1001234567890,
        creator_id=5,
    )
    full = {
        "user_id": 1001.0, "name": "Ivan", "product": "Course", "purchase_amount": 19.99, "username": "@ivan",
        "photo_url": "https://t.me/p.jpg", "is_premium": "да", "phone_number": "+7 916 123-45-67",
        "birthdate": date(1990, 5, 1), "status": "sale", "sub_date": datetime(2024, 1, 10, 9, 0),
        "unsub_date": "2024-02-01", "action_date": "10.01.2024 12:30", "invite_link": "https://t.me/+abc",
    }  # fmt: skip
    bare = dict.fromkeys(COLUMN_NAMES, "") | {"user_id": 1002.0, "sub_date": datetime(2024, 1, 11)}
    rows = []
    for excel_row, cells in ((2, full), (3, bare)):
        values = dict.fromkeys(COLUMN_NAMES, "") | cells
        doc = validator.validate([values.get(name, "") for name in COLUMN_NAMES], excel_row)
        assert doc is not None, validator.sink.items
        rows.append(doc)
    return rows


def _event_rows() -> list[dict[str, Any]]:
    event = contracts.SaleRecorded(
        source="crm",
        report_id="rep",
        channel_id=-1001234567890,
        sales=[
            contracts.RecordedSale(
                external_id="1", user_id=42, purchase_amount="5", product="Course", username="@u",
                sub_date=datetime(2024, 1, 1, tzinfo=UTC), action_date=datetime(2024, 1, 2, tzinfo=UTC),
                invite_link="https://t.me/+x",
            ),
            contracts.RecordedSale(external_id="2", status="lead"),
        ],
    )  # fmt: skip
    return [row_for(event, sale, 5, "RUB") for sale in event.sales]


BUILDERS = {"excel": _excel_rows, "event": _event_rows}


def test_the_declaration_has_the_24_seed_keys_and_currency() -> None:
    assert len(SALE_ROW_KEYS) == 25 and "currency" in SALE_ROW_KEYS


@pytest.mark.parametrize("builder", sorted(BUILDERS))
def test_every_builder_gives_the_declared_sale_row(builder: str) -> None:
    rows = BUILDERS[builder]()
    assert rows
    for built in rows:
        assert mismatches(built, SaleRow) == [], built["_id"]
        assert len(str(built["currency"])) == 3 and str(built["currency"]).isupper()
