"""The connectors' normalisation gives exactly the declared `shared.sale_rows.SaleRow`, `currency`
included (the Excel and event builders: tests/unit/test_sale_row_shape.py).

NOT COLLECTED YET (its name does not start with `test_`): connector rows get their `currency`
with issue 17 (SweetClub `currency_code`, Eduzz BRL or the connection's option, OFD RUB). The lead
renames it to `test_connector_row_shape.py` when issue 17 merges, pointing the imports at
services/connectors/platforms/<platform>/ (models and rows).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from services.connectors import eduzz, ofd, sweetclub
from services.connectors.normalise import RowContext, eduzz_row, ofd_row, sweetclub_row
from shared.sale_rows import SaleRow
from tests.shapes import mismatches

FIXTURES = Path(__file__).resolve().parents[1] / "connectors" / "fixtures"
CTX = RowContext("r1", "s1", -1001234567890, 7, "c1", "Europe/Moscow")


def _fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def _connector_rows() -> list[dict[str, Any]]:
    sales = sweetclub.SALE_LIST.validate_python(_fixture("sweetclub_sale_list.json"))
    info = sweetclub.SaleInfo.model_validate(_fixture("sweetclub_sale_info.json"))
    page = eduzz.SalesPage.model_validate(_fixture("eduzz_sales_list.json"))
    detail = eduzz.SaleWithItems.model_validate(_fixture("eduzz_sale.json"))
    report = ofd.SalesReport.model_validate(_fixture("ofd_response.json"))
    return [
        *(sweetclub_row(CTX, s) for s in sales),
        sweetclub_row(CTX, sales[1], info),
        eduzz_row(CTX, page.items[0], detail),
        eduzz_row(CTX, page.items[0]),
        *(ofd_row(CTX, day) for day in report.data),
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
