"""The example payloads printed in the seed documents parse, with their quirks, exactly."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from services.connectors.platforms.base.rows import RowContext
from services.connectors.platforms.eduzz import models as eduzz
from services.connectors.platforms.eduzz.rows import detail_fields as eduzz_detail
from services.connectors.platforms.eduzz.rows import listing_row as eduzz_row
from services.connectors.platforms.ofd import models as ofd
from services.connectors.platforms.ofd.rows import day_row as ofd_row
from services.connectors.platforms.ofd.rows import revenue_of as ofd_revenue
from services.connectors.platforms.sweetclub import models as sweetclub
from services.connectors.platforms.sweetclub.rows import listing_row as sweetclub_row

FIXTURES = Path(__file__).parent / "fixtures"
CTX = RowContext("r1", "s1", -1001234567890, 7, "c1", "Europe/Moscow")


def load(name: str) -> object:
    return json.loads((FIXTURES / name).read_text())


def test_sweetclub_examples_parse() -> None:
    assert (
        sweetclub.LoginAnswer.model_validate(load("sweetclub_login_ok.json")).api_token == "808bb056ebd9aecddfc83de71g"
    )
    assert "не существует" in str(sweetclub.LoginAnswer.model_validate(load("sweetclub_login_error.json")).error)
    sales = sweetclub.SALE_LIST.validate_python(load("sweetclub_sale_list.json"))
    assert [(s.sale_id, s.status, s.total) for s in sales] == [
        ("47740", "0", Decimal(400)),
        ("47739", "1", Decimal(100)),
    ]
    info = sweetclub.SaleInfo.model_validate(load("sweetclub_sale_info.json"))
    assert info.sale_info.delivery_id is None
    assert info.sale_info.products is not None and info.sale_info.products[0].quantity == "1.0000 шт"
    assert info.delivery is not None and info.delivery.type_id == "2"
    added = sweetclub.SaleAddAnswer.model_validate(load("sweetclub_sale_add.json"))
    assert added.sales_id == [47744] and added.error == []
    assert [b.brand_id for b in sweetclub.BRAND_LIST.validate_python(load("sweetclub_brand_list.json"))] == [
        "1",
        "2",
        "3",
        "4",
    ]
    brand = sweetclub.BRAND_INFO.validate_python(load("sweetclub_brand_info.json"))[0]
    assert [u.value for u in brand.product_type[0].units] == ["1", "2", "3"]
    reasons = sweetclub.RefundReasons.model_validate(load("sweetclub_refund_reasons.json"))
    assert [r.return_reason_id for r in reasons.return_reasons] == ["4", "2", "5", "3"]
    assert sweetclub.RefundAddAnswer.model_validate(load("sweetclub_refund_ok.json")).success
    assert sweetclub.RefundAddAnswer.model_validate(load("sweetclub_refund_error.json")).error == {
        "sale_id": "Возврат не произведен. Не корректный sale_id"
    }


def test_sweetclub_rows_keep_refunds_as_refunded() -> None:
    sales = sweetclub.SALE_LIST.validate_python(load("sweetclub_sale_list.json"))
    rows = [sweetclub_row(CTX, s) for s in sales]
    assert [r["status"] for r in rows] == ["refunded", "sale"]
    assert rows[0]["_id"] == "s1:47740"
    # 18:57:36 Moscow time is 15:57:36 UTC.
    assert rows[0]["action_date"].isoformat() == "2021-04-01T15:57:36+00:00"


def test_eduzz_examples_parse_and_map() -> None:
    page = eduzz.SalesPage.model_validate(load("eduzz_sales_list.json"))
    assert (page.pages, page.page, page.total_items) == (57, 1, 1402)
    sale = eduzz.Sale.model_validate(page.items[0])
    assert sale.total_value == Decimal(499) and sale.fee_value == Decimal("-18.91")
    assert sale.contract is not None and sale.contract.total_value == Decimal("5988.0")
    detail = eduzz.SaleWithItems.model_validate(load("eduzz_sale.json"))
    assert detail.items is not None
    assert detail.items[0].value == Decimal("79.2") and detail.items[0].coupon_key is None
    row = eduzz_row(CTX, sale)
    assert row["status"] == "sale" and str(row["purchase_amount"]) == "499"
    assert row["customer_key"] == "eduzz:client:123321"
    assert row["extra"]["net_gain"] == "480.09"
    assert eduzz_detail(detail)["extra.items"][0]["sku"] == "SKU_Item"


def test_ofd_examples_parse_and_total_is_authoritative() -> None:
    query = ofd.SalesQuery.model_validate(load("ofd_request.json"))
    assert query.interval == "month" and query.orders == ["-date"]
    report = ofd.SalesReport.model_validate(load("ofd_response.json"))
    assert report.total == 2 and len(report.data) == 2
    june = ofd.IntervalRow.model_validate(report.data[1])
    assert june.income is not None and june.income.cashTotal == Decimal("630.0")
    assert ofd_revenue(june) == Decimal("631.0")  # total, not the sum of the parts
    row = ofd_row(CTX, june)
    assert row["status"] == "revenue" and row["user_id"] is None and row["extra"]["checks_income"] == 10


def test_unknown_fields_and_missing_optionals_are_accepted() -> None:
    sale = eduzz.Sale.model_validate({"id": "5", "total_value": "10.5", "new_field": {"x": 1}})
    assert sale.id == 5 and sale.total_value == Decimal("10.5") and sale.client is None
    item = sweetclub.SaleListItem.model_validate(
        {"sale_id": 1, "total": "99.90", "date_added": "2021-04-01 18:57:36", "status": 1}
    )
    assert item.sale_id == "1" and item.status == "1" and item.total == Decimal("99.90")
