"""Each client against its emulator over real loopback HTTP: every documented method, auth,
paging caps, and the retry policy under each fault."""

from __future__ import annotations

import time
from datetime import date
from decimal import Decimal

import pytest

from services.connectors.platforms.base.http import ApiError, AuthError, HttpConfig, RetryPolicy, UnavailableError
from services.connectors.platforms.eduzz import client as eduzz
from services.connectors.platforms.ofd import client as ofd
from services.connectors.platforms.ofd import models as ofd_models
from services.connectors.platforms.sweetclub import client as sweetclub
from services.connectors.platforms.sweetclub import models as sweetclub_models
from shared.metrics import CONNECTOR_CALLS
from tests.connectors.conftest import Sandbox, control

FAST = HttpConfig(
    timeout=1.0,
    connect_timeout=1.0,
    retry=RetryPolicy(attempts=4, base_delay=0.05, max_delay=0.2),
    rate_per_second=500,
    burst=50,
)
SC_USER = ("testapi@testapi.com", "testapi@testapi.com")


def calls(api: str, outcome: str) -> float:
    return float(CONNECTOR_CALLS.labels(api=api, outcome=outcome)._value.get())


@pytest.fixture
def sc(sandbox: Sandbox) -> sweetclub.SweetClubClient:
    control(sandbox.sweetclub, "reset", {"size": 2500, "seed": 7})
    return sweetclub.SweetClubClient(sandbox.sweetclub, *SC_USER, FAST)


async def test_sweetclub_every_method(sc: sweetclub.SweetClubClient) -> None:
    async with sc:
        default = await sc.sale_list(sale_status=None, sort=None, order=None, limit=None, page=None)
        assert len(default) == 20 and int(default[0].sale_id) > int(default[1].sale_id)  # 20 latest, DESC
        page = await sc.sale_list(limit=1000, page=3)
        assert len(page) == 500 and page[0].sale_id == "42001"
        only_refunds = await sc.sale_list(sale_status="0", limit=1000)
        assert only_refunds and {s.status for s in only_refunds} == {"0"}
        march = await sc.sale_list(date_start=date(2024, 3, 1), date_end=date(2024, 3, 31), limit=1000)
        assert march and all(s.date_added is not None and s.date_added.month == 3 for s in march)
        by_total = await sc.sale_list(sort="s.total", order="DESC", limit=50)
        assert [s.total for s in by_total] == sorted((s.total for s in by_total), reverse=True)
        with pytest.raises(ValueError, match="limit"):
            await sc.sale_list(limit=1001)
        info = await sc.sale_info(page[0].sale_id)
        assert info.sale_info.id == page[0].sale_id and info.sale_info.products
        brands = await sc.brand_list()
        detail = await sc.brand_info(brands[0].brand_id)
        assert detail[0].sale_channels and detail[0].product_type[0].units
        reasons = await sc.refund_reasons()
        added = await sc.sale_add(
            sweetclub_models.SaleAddForm(
                brand_id="2",
                product_type="1",
                product_quantity="1",
                product_unit="2",
                product_price="500",
                sale_channel_id="1",
                production_date="2021-03-30",
                delivery_date="2021-04-02",
            )
        )
        assert len(added.sales_id) == 1 and not added.error
        refused = await sc.sale_add(
            sweetclub_models.SaleAddForm(
                brand_id="999",
                product_type="1",
                product_quantity="1",
                product_unit="1",
                product_price="1",
                sale_channel_id="1",
                production_date="2021-03-30",
            )
        )
        assert refused.sales_id == [] and "brand_id" in refused.error
        refund = await sc.refund_add(str(added.sales_id[0]), reasons.return_reasons[0].return_reason_id, "тест")
        assert refund.success and not refund.error
        again = await sc.refund_add(str(added.sales_id[0]), "3")
        assert again.error == {"sale_id": "Возврат не произведен. Не корректный sale_id"}
        info = await sc.sale_info(str(added.sales_id[0]))
        assert info.sale_info.status == "0" and info.sale_info.total == Decimal(500)


async def test_sweetclub_paginates_to_the_end(sc: sweetclub.SweetClubClient) -> None:
    async with sc:
        seen: list[str] = []
        page_no: int | None = 1
        while page_no is not None:
            page = await sc.sale_list_page(page_no, date_start=None, date_end=None, limit=1000)
            seen += [str(s["sale_id"]) for s in page.items]
            page_no = page.next_page
        assert len(seen) == len(set(seen)) == 2500


async def test_sweetclub_bad_login_is_a_clear_error(sandbox: Sandbox) -> None:
    async with sweetclub.SweetClubClient(sandbox.sweetclub, "nobody", "wrong", FAST) as client:
        with pytest.raises(AuthError, match="не существует"):
            await client.brand_list()


async def test_sweetclub_logs_in_again_when_the_session_expires(
    sc: sweetclub.SweetClubClient, sandbox: Sandbox
) -> None:
    async with sc:
        await sc.brand_list()
        first = sc._token
        control(sandbox.sweetclub, "faults", {"fault": "expire_token", "path": "/api/brand/list"})
        assert len(await sc.brand_list()) == 4
        assert sc._token != first
        stats = control(sandbox.sweetclub, "stats", method="GET")
        assert stats["requests"]["/api/login"] == 2  # type: ignore[index]


async def test_eduzz_methods_and_page_cap(sandbox: Sandbox) -> None:
    control(sandbox.eduzz, "reset", {"size": 300, "seed": 3})
    async with eduzz.EduzzClient(sandbox.eduzz, "sandbox-eduzz-token", FAST) as client:
        page = await client.list_sales(date(2024, 1, 1), date(2024, 12, 31), per_page=25, page=2)
        assert (page.page, page.items_per_page, page.total_items, page.pages) == (2, 25, 300, 12)
        with pytest.raises(ValueError, match="per_page"):
            await client.list_sales(date(2024, 1, 1), date(2024, 12, 31), per_page=26)
        with pytest.raises(TypeError, match="integer"):
            await client.list_sales(date(2024, 1, 1), date(2024, 12, 31), status="paid")  # type: ignore[arg-type]
        by_payment = await client.list_sales(date(2024, 1, 1), date(2024, 12, 31), date_type="payment")
        assert by_payment.items and all(s["paid_at"] for s in by_payment.items)
        sale = await client.get_sale(page.items[0]["id"])
        assert sale.items and sale.id == page.items[0]["id"]
        with pytest.raises(ApiError, match="404"):
            await client.get_sale(1)
    async with eduzz.EduzzClient(sandbox.eduzz, "wrong", FAST) as client:
        with pytest.raises(AuthError, match="token"):
            await client.list_sales(date(2024, 1, 1), date(2024, 1, 2))


async def test_ofd_report_filters_and_paging(sandbox: Sandbox) -> None:
    control(sandbox.ofd, "reset", {"size": 3000, "seed": 5})
    async with ofd.OfdClient(sandbox.ofd, "sandbox-yandex-key", "sandbox-ofd-key", FAST) as client:
        months = await client.sales_report(
            ofd_models.SalesQuery(
                date_from="2024-01-01",
                date_to="2024-12-31",
                interval="month",
                orders=["-date"],
                limit=20,
                offset=0,
                document_types=["receipt", "receiptCorrection", "bso", "bsoCorrection"],
                company_ids=["301"],
            )
        )
        assert months.total == 12 and [m["start"] for m in months.data][:2] == ["2024-12-01", "2024-11-01"]
        income_only = await client.sales_report(
            ofd_models.SalesQuery(
                date_from="2024-01-01 00:00:00",
                date_to="2024-01-31",
                interval="week",
                operation_types=["income"],
                taxation_types=["osn", "psn"],
                retail_point_ids=["11"],
                cashbox_ids=["KKT1", "KKT2"],
                orders=["income"],
            )
        )
        weeks = [ofd_models.IntervalRow.model_validate(w) for w in income_only.data]
        totals = [w.income.total for w in weeks if w.income and w.income.total is not None]
        assert totals == sorted(totals) and all(w.income_return and w.income_return.total == 0 for w in weeks)
        days: list[str] = []
        offset: int | None = 0
        while offset is not None:
            page = await client.day_page(offset, date_from=date(2024, 1, 1), date_to=date(2024, 12, 31), limit=50)
            days += [d.get("start") or "" for d in page.items]
            offset = page.next_page
        assert len(days) == len(set(days)) >= 360 and days == sorted(days)
        with pytest.raises(ValueError, match="order"):
            await client.sales_report(
                ofd_models.SalesQuery(date_from="2024-01-01", date_to="2024-01-02", orders=["bogus"])
            )
    async with ofd.OfdClient(sandbox.ofd, "sandbox-yandex-key", "wrong", FAST) as client:
        with pytest.raises(AuthError, match="keys refused"):
            await client.day_page(0, date_from=date(2024, 1, 1), date_to=date(2024, 1, 2))


@pytest.mark.parametrize("fault", ["429", "500", "slow", "drop"])
async def test_retries_each_fault_then_succeeds(sandbox: Sandbox, fault: str) -> None:
    control(sandbox.eduzz, "reset", {"size": 50})
    control(sandbox.eduzz, "faults", {"fault": fault, "count": 2, "retry_after": 1, "delay": 1.5})
    outcome = {"429": "rate_limited", "500": "server_error", "slow": "timeout", "drop": "network_error"}[fault]
    before = calls("eduzz", outcome)
    started = time.monotonic()
    async with eduzz.EduzzClient(sandbox.eduzz, "sandbox-eduzz-token", FAST) as client:
        page = await client.list_sales(date(2024, 1, 1), date(2024, 12, 31))
    assert page.total_items == 50
    assert calls("eduzz", outcome) - before == 2
    if fault == "429":
        assert time.monotonic() - started >= 2.0  # Retry-After: 1 honoured twice


async def test_gives_up_after_the_retry_budget(sandbox: Sandbox) -> None:
    control(sandbox.ofd, "faults", {"fault": "500", "count": 10})
    try:
        async with ofd.OfdClient(sandbox.ofd, "sandbox-yandex-key", "sandbox-ofd-key", FAST) as client:
            with pytest.raises(UnavailableError, match="gave up after 4 attempts"):
                await client.day_page(0, date_from=date(2024, 1, 1), date_to=date(2024, 1, 2))
    finally:
        control(sandbox.ofd, "faults", method="DELETE")
