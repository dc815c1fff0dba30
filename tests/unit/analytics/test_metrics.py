"""Metrics of SPEC §4 against cases computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import bson

from services.analytics.metrics import compute_metrics
from shared.totals import LinkTotals, Totals, from_document, to_document, totals_from_rows

DAY_MS = 86_400_000


def metrics(budget: Decimal, totals: Totals) -> dict[str, Any]:
    """The report's fields in its own currency (RUB), without rates or link costs."""
    return compute_metrics(budget, totals).fields


def excel_row(user_id, status=None, amount=None, period_days=None, premium=False, username=None):
    return {
        "source": "excel",
        "user_id": user_id,
        "status": status,
        "purchase_amount": None if amount is None else Decimal(amount),
        "action_period_ms": None if period_days is None else int(Decimal(period_days) * DAY_MS),
        "is_premium": premium,
        "username": username,
    }


def test_hand_computed_campaign():
    # 4 distinct users (user 1 twice); budget 1000.
    rows = [
        excel_row(1, "sale", "300.00", 2, premium=True, username="ann"),
        excel_row(1, "lead", None, 1, premium=False, username=None),
        excel_row(2, "sale", "200.50", 4, username="bob"),
        excel_row(3, "funnel", None, "0.5"),
        excel_row(4, None),
    ]
    m = metrics(Decimal(1000), totals_from_rows(rows))
    assert m["subs"] == 4
    assert (m["sales"], m["leads"], m["funnel"]) == (2, 1, 1)
    assert m["profit"] == Decimal("500.50")
    assert m["romi"] == Decimal("-49.95")  # (500.50 − 1000) / 1000 × 100
    assert m["cpc"] == Decimal("250.00")
    assert m["cpf"] == Decimal("1000.00")
    assert m["cpl"] == Decimal("1000.00")
    assert m["cac"] == Decimal("500.00")  # two distinct buyers
    assert m["cr_sales"] == Decimal("50.00")
    assert m["cr_leads"] == Decimal("25.00")
    assert m["cr_funnel"] == Decimal("25.00")
    assert m["avg_sale"] == Decimal("3.00")
    assert m["avg_lead"] == Decimal("1.00")
    assert m["avg_funnel"] == Decimal("0.50")
    assert m["premium_percent"] == Decimal("25.00")  # user 1 is premium on one of their rows
    assert m["username_percent"] == Decimal("50.00")


def test_zero_budget_gives_null_romi_and_zero_costs():
    m = metrics(Decimal(0), totals_from_rows([excel_row(1, "sale", "10", 1)]))
    assert m["romi"] is None
    assert m["cpc"] == Decimal("0.00")
    assert m["cac"] == Decimal("0.00")


def test_no_rows_every_ratio_is_null_never_an_error():
    m = metrics(Decimal(500), Totals())
    assert m["subs"] == 0
    assert m["profit"] == Decimal("0.00")
    assert m["romi"] == Decimal("-100.00")
    for field in (
        "cpc",
        "cpf",
        "cpl",
        "cac",
        "cr_funnel",
        "cr_leads",
        "cr_sales",
        "avg_sale",
        "avg_lead",
        "avg_funnel",
        "premium_percent",
        "username_percent",
    ):
        assert m[field] is None, field


def test_no_sales_means_null_cac_and_avg_sale():
    m = metrics(Decimal(100), totals_from_rows([excel_row(1, "lead", None, 1), excel_row(2)]))
    assert m["sales"] == 0
    assert m["cac"] is None
    assert m["avg_sale"] is None
    assert m["cpl"] == Decimal("100.00")


def test_rounding_is_half_up_once_at_the_end():
    # budget / subs = 10 / 3 = 3.333… → 3.33 ; 5 / 8 = 0.625 → 0.63 (half-up, not banker's 0.62)
    assert metrics(Decimal(10), Totals(subs=3))["cpc"] == Decimal("3.33")
    assert metrics(Decimal(5), Totals(subs=8))["cpc"] == Decimal("0.63")
    # cr over 3 users with 1 sale: 33.333… → 33.33; 2 sales: 66.666… → 66.67
    assert metrics(Decimal(1), Totals(subs=3, counts={"sale": 1}))["cr_sales"] == Decimal("33.33")
    assert metrics(Decimal(1), Totals(subs=3, counts={"sale": 2}))["cr_sales"] == Decimal("66.67")
    # averages are not pre-rounded per row: periods 0.004 + 0.004 + 0.004 days average 0.004 → 0.00,
    # while 0.005 days averages to 0.01 (half-up)
    t = Totals(period_ms_sum={"sale": int(0.005 * DAY_MS) * 2}, period_n={"sale": 2})
    assert metrics(Decimal(1), t)["avg_sale"] == Decimal("0.01")


def test_duplicate_users_count_once_in_subs_and_buyers_but_every_row_counts_as_a_sale():
    rows = [excel_row(7, "sale", "10", 1), excel_row(7, "sale", "15", 3), excel_row(8)]
    m = metrics(Decimal(50), totals_from_rows(rows))
    assert m["subs"] == 2
    assert m["sales"] == 2
    assert m["cac"] == Decimal("50.00")  # one distinct buyer
    assert m["cr_sales"] == Decimal("100.00")
    assert m["profit"] == Decimal("25.00")
    assert m["avg_sale"] == Decimal("2.00")


def test_platform_rows_add_sales_and_revenue_but_not_subscribers():
    rows = [
        excel_row(1, "sale", "100", 1),
        {
            "source": "eduzz",
            "user_id": None,
            "customer_key": "eduzz:c1",
            "status": "sale",
            "purchase_amount": Decimal("50"),
            "action_period_ms": None,
        },
        {
            "source": "sweetclub",
            "user_id": None,
            "customer_key": "sc:9",
            "status": "refunded",
            "purchase_amount": Decimal("70"),
            "action_period_ms": None,
        },
        {
            "source": "ofd",
            "user_id": None,
            "customer_key": None,
            "status": "revenue",
            "purchase_amount": Decimal("25.25"),
            "action_period_ms": None,
        },
    ]
    m = metrics(Decimal(100), totals_from_rows(rows))
    assert m["subs"] == 1
    assert m["sales"] == 2  # the refunded sale is kept but not counted
    assert m["profit"] == Decimal("175.25")  # receipts count as revenue
    assert m["cac"] == Decimal("50.00")  # two distinct buyers
    assert m["avg_sale"] == Decimal("1.00")  # the platform sale has no period


def test_totals_survive_a_round_trip_through_a_document() -> None:
    totals = Totals(
        subs=5, premium_users=2, username_users=3, buyers=1,
        counts={"funnel": 1, "lead": 2, "sale": 3}, revenue={"RUB": Decimal("1234.57"), "BRL": Decimal("0.10")},
        revenue_rows={"RUB": 3, "BRL": 1},
        period_ms_sum={"funnel": 0, "lead": 7, "sale": 2**40}, period_n={"funnel": 0, "lead": 1, "sale": 3},
        unsubs=2, as_of=datetime(2024, 3, 1, 12, tzinfo=UTC),
        retention_eligible={1: 4, 7: 3, 30: 0}, retention_kept={1: 3, 7: 1, 30: 0},
        links=(
            LinkTotals("https://t.me/+a", subs=3, unsubs=1, funnel=1, leads=2, sales=2, buyers=1,
                       revenue={"RUB": Decimal("1000.00")}, retention_eligible={1: 3, 7: 2, 30: 0},
                       retention_kept={1: 2, 7: 1, 30: 0}),
            LinkTotals(None, subs=2, unsubs=1, sales=1, revenue={"RUB": Decimal("234.57"), "BRL": Decimal("0.10")}),
        ),
    )  # fmt: skip
    assert from_document(bson.decode(bson.encode(to_document(totals)))) == totals
