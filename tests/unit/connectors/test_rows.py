"""Row mapping and the listing hash: pure, per platform."""

from __future__ import annotations

from decimal import Decimal

from services.connectors.platforms.base.rows import RowContext, currency_of
from services.connectors.platforms.eduzz.models import Sale
from services.connectors.platforms.eduzz.rows import listing_row as eduzz_row
from services.connectors.platforms.sweetclub.models import SaleInfo, SaleListItem
from services.connectors.platforms.sweetclub.rows import detail_fields, listing_row
from services.connectors.sync.rows_store import listing_hash

CTX = RowContext("r1", "s1", -100123, 7, "c1", "Europe/Moscow", "RUB")
ITEM = {"sale_id": "47740", "name": "Безе", "total": 400, "currency_code": "RUB", "date_added": "2021-04-01 18:57:36",
        "status": "0"}  # fmt: skip


def test_a_listing_item_is_a_complete_row_in_its_currency() -> None:
    row = listing_row(CTX, SaleListItem.model_validate({**ITEM, "currency_code": "usd"}))
    assert (row["status"], row["currency"], str(row["purchase_amount"])) == ("refunded", "USD", "400")
    assert row["customer_key"] == "sweetclub:sale:47740" and "warnings" not in row["extra"]


def test_an_unreadable_currency_is_the_connection_s_with_a_warning() -> None:
    assert currency_of("₽", "RUB") == ("RUB", None)
    assert currency_of("", "BRL") == ("BRL", None)
    code, warning = currency_of("RUR?", "RUB")
    assert code == "RUB" and warning is not None and "RUR?" in warning
    row = listing_row(CTX, SaleListItem.model_validate({**ITEM, "currency_code": "рубли??"}))
    assert row["currency"] == "RUB" and "unreadable currency" in row["extra"]["warnings"][0]


def test_a_zero_date_is_no_date_and_the_sale_still_counts() -> None:
    row = listing_row(CTX, SaleListItem.model_validate({**ITEM, "date_added": "0000-00-00 00:00:00", "status": 1}))
    assert row["status"] == "sale" and row["action_date"] is None
    assert row["extra"]["warnings"] == ["no readable date_added"]


def test_php_empty_arrays_where_objects_are_documented_read_as_absent() -> None:
    info = SaleInfo.model_validate(
        {
            "delivery": [],
            "sale_info": {
                "id": "1",
                "total": "500.00",
                "status": 1,
                "client_id": "42",
                "date_modified": "0000-00-00 00:00:00",
                "products": [],
            },
        }
    )
    assert info.delivery is None and info.sale_info.total == Decimal(500)
    fields = detail_fields(info)
    assert fields["extra.delivery"] is None and fields["extra.products"] == []
    assert fields["customer_key"] == "sweetclub:client:42"
    sale = Sale.model_validate({"id": 5, "client": [], "status": {"name": "Paga"}, "total_value": "10"})
    assert eduzz_row(CTX, sale)["status"] == "sale"


def test_the_listing_hash_sees_changes_and_not_the_spelling_of_a_number() -> None:
    base = listing_row(CTX, SaleListItem.model_validate(ITEM))
    as_text = listing_row(CTX, SaleListItem.model_validate({**ITEM, "total": "400.00", "sale_id": 47740}))
    assert listing_hash(base) == listing_hash(as_text)
    refunded = listing_row(CTX, SaleListItem.model_validate({**ITEM, "status": "1"}))
    repriced = listing_row(CTX, SaleListItem.model_validate({**ITEM, "total": 401}))
    assert len({listing_hash(base), listing_hash(refunded), listing_hash(repriced)}) == 3
