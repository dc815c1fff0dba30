"""`sale recorded` events → stored rows: each row keeps its currency (SPEC §4.1)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from bson import Decimal128
from pydantic import ValidationError

from services.ingest.recorded import row_for
from shared import contracts


def event(*sales: contracts.RecordedSale) -> contracts.SaleRecorded:
    return contracts.SaleRecorded(source="shop", report_id="rep", channel_id=-100, sales=list(sales))


def test_a_sale_without_a_currency_takes_the_reports() -> None:
    sale = contracts.RecordedSale(external_id="o-1", purchase_amount=Decimal("99.50"))
    row = row_for(event(sale), sale, 7, "BRL")
    assert row["currency"] == "BRL"
    assert row["purchase_amount"] == Decimal128("99.50")


@pytest.mark.parametrize(("given", "code"), [("usd", "USD"), ("R$", "BRL"), ("₽", "RUB"), ("руб", "RUB"), ("€", "EUR")])
def test_a_sales_own_currency_code_or_symbol_wins(given: str, code: str) -> None:
    sale = contracts.RecordedSale(external_id="o-1", purchase_amount=Decimal("1"), currency=given)
    assert row_for(event(sale), sale, 7, "RUB")["currency"] == code


def test_an_unknown_currency_fails_validation_so_the_message_is_dead_lettered() -> None:
    with pytest.raises(ValidationError, match="ISO 4217"):
        contracts.RecordedSale(external_id="o-1", currency="XYZ")
