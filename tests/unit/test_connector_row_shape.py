"""The connectors' row mapping gives exactly the declared `shared.sale_rows.SaleRow`, `currency`
included (the Excel and event builders: tests/unit/test_sale_row_shape.py): SweetClub rows in
their `currency_code`, Eduzz rows in the connection's currency (BRL by default), OFD days in RUB."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from services.connectors.platforms.base.rows import RowContext
from services.connectors.platforms.eduzz import models as eduzz
from services.connectors.platforms.eduzz import rows as eduzz_rows
from services.connectors.platforms.ofd import models as ofd
from services.connectors.platforms.ofd import rows as ofd_rows
from services.connectors.platforms.sweetclub import models as sweetclub
from services.connectors.platforms.sweetclub import rows as sweetclub_rows
from shared.sale_rows import SaleRow
from tests.shapes import mismatches

FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "fixtures"
CTX = RowContext("r1", "s1", -1001234567890, 7, "c1", "Europe/Moscow", "RUB")


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _enriched(row: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A stored row after its detail call: the `$set` paths of `detail_fields` applied."""
    enriched = {**row, "extra": dict(row["extra"] or {})}
    for path, value in fields.items():
        if path.startswith("extra."):
            enriched["extra"][path.removeprefix("extra.")] = value
        else:
            enriched[path] = value
    return enriched


def _connector_rows() -> list[dict[str, Any]]:
    sales = sweetclub.SALE_LIST.validate_python(_fixture("sweetclub_sale_list.json"))
    info = sweetclub.SaleInfo.model_validate(_fixture("sweetclub_sale_info.json"))
    page = eduzz.SalesPage.model_validate(_fixture("eduzz_sales_list.json"))
    detail = eduzz.SaleWithItems.model_validate(_fixture("eduzz_sale.json"))
    report = ofd.SalesReport.model_validate(_fixture("ofd_response.json"))
    eduzz_ctx = replace(CTX, currency="BRL", timezone="UTC")
    # The listing page keeps its items raw (one unreadable sale must not spoil the page).
    sale = eduzz.Sale.model_validate(page.items[0])
    return [
        *(sweetclub_rows.listing_row(CTX, s) for s in sales),
        _enriched(sweetclub_rows.listing_row(CTX, sales[1]), sweetclub_rows.detail_fields(info)),
        _enriched(eduzz_rows.listing_row(eduzz_ctx, sale), eduzz_rows.detail_fields(detail)),
        eduzz_rows.listing_row(eduzz_ctx, sale),
        *(ofd_rows.day_row(CTX, ofd.IntervalRow.model_validate(day)) for day in report.data),
    ]


def test_every_connector_row_is_the_declared_sale_row() -> None:
    rows = _connector_rows()
    assert {row["source"] for row in rows} == {"sweetclub", "eduzz", "ofd"}
    for built in rows:
        assert mismatches(built, SaleRow) == [], built["_id"]
    assert {row["source"]: row["currency"] for row in rows if row["source"] != "sweetclub"} == {
        "eduzz": "BRL",
        "ofd": "RUB",
    }
    assert all(row["currency"] == "RUB" for row in rows if row["source"] == "sweetclub")
