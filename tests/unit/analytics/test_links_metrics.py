"""Currencies, retention and the links table (SPEC §4.1, §4.2) against cases computed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.analytics.metrics import compute_metrics, split_rounded
from shared.links_answer import LINK_FIELDS
from shared.totals import totals_from_rows

T0 = datetime(2024, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
DAY = timedelta(days=1)


def excel(
    user_id: int,
    sub: datetime,
    *,
    row: int,
    source: str = "s1",
    status: str | None = None,
    amount: str | None = None,
    currency: str | None = "RUB",
    link: str | None = None,
    unsub: datetime | None = None,
    action: datetime | None = None,
) -> dict[str, Any]:
    return {
        "source": "excel",
        "source_report_id": source,
        "row": row,
        "user_id": user_id,
        "customer_key": None,
        "status": status,
        "purchase_amount": None if amount is None else Decimal(amount),
        "currency": currency,
        "invite_link": link,
        "sub_date": sub,
        "unsub_date": unsub,
        "action_date": action,
        "action_period_ms": None,
    }


def platform(key: str, amount: str, currency: str, link: str | None, status: str = "sale") -> dict[str, Any]:
    return {
        "source": "eduzz",
        "source_report_id": "s3",
        "user_id": None,
        "customer_key": key,
        "status": status,
        "purchase_amount": Decimal(amount),
        "currency": currency,
        "invite_link": link,
    }


ORDER = {"s1": 0, "s2": 1, "s3": 2}


def by_link(links: list[dict[str, Any]]) -> dict[str | None, dict[str, Any]]:
    return {entry["invite_link"]: entry for entry in links}


# --------------------------------------------------------------------------- first touch


def test_first_touch_is_the_earliest_sub_date_and_file_order_breaks_ties() -> None:
    rows = [
        # user 1: two rows at the same sub_date: the first in the file (row 2) is the first touch
        excel(1, T0, row=2, link="A"),
        excel(1, T0, row=3, link="B", unsub=T0 + DAY, status="sale", amount="100"),
        # user 2: its later row comes first in the file; the earlier sub_date wins
        excel(2, T0 + 4 * DAY, row=4, link="B", unsub=T0 + 5 * DAY),
        excel(2, T0 + DAY, row=5, link=None, unsub=T0 + DAY + 12 * timedelta(hours=1)),
        # user 3: a tie across files: the earlier-created source wins, whatever its row number
        excel(3, T0 + 2 * DAY, row=2, source="s2", link="B"),
        excel(3, T0 + 2 * DAY, row=900, source="s1", link="A", status="lead"),
    ]
    totals = totals_from_rows(rows, "RUB", ORDER)
    assert totals.subs == 3
    assert totals.unsubs == 1  # only user 2's first touch (row 5) has an unsub_date; user 1's row 3 is not its first
    links = {link.invite_link: link for link in totals.links}
    assert set(links) == {"A", None}
    assert (links["A"].subs, links["A"].unsubs, links[None].subs, links[None].unsubs) == (2, 0, 1, 1)
    # user 1's sale (row 3, link B) belongs to the user's first-touch link A
    assert (links["A"].sales, links["A"].buyers, links["A"].leads) == (1, 1, 1)
    assert links["A"].revenue == {"RUB": Decimal(100)}
    assert totals.as_of == T0 + 5 * DAY  # user 2's unsub_date of row 4 is the latest date of any row


def test_retention_windows_at_their_exact_edges() -> None:
    as_of = T0 + 40 * DAY
    rows = [
        excel(99, as_of, row=2),  # sets as_of; too young for every window
        # sub exactly N days before as_of: old enough; one millisecond later: not
        excel(1, as_of - DAY, row=3),
        excel(2, as_of - DAY + MS, row=4),
        excel(3, as_of - 7 * DAY, row=5, unsub=as_of - 7 * DAY + 7 * DAY),  # unsub exactly 7 days after
        excel(4, as_of - 30 * DAY, row=6, unsub=as_of - 30 * DAY + DAY - MS),  # one ms short of a day
        excel(5, as_of - 30 * DAY, row=7, unsub=as_of - 30 * DAY + 30 * DAY),  # stayed exactly 30 days
    ]
    totals = totals_from_rows(rows, "RUB", ORDER)
    assert totals.as_of == as_of
    # eligible: d1 users 1,3,4,5; d7 users 3,4,5; d30 users 4,5
    assert dict(totals.retention_eligible) == {1: 4, 7: 3, 30: 2}
    # kept: d1: 1 (no unsub), 3, 5 (user 4 left a ms before a day); d7: 3, 5; d30: 5
    assert dict(totals.retention_kept) == {1: 3, 7: 2, 30: 1}
    fields = compute_metrics(Decimal(600), totals).fields
    assert fields["retention_d1"] == Decimal("75.00")
    assert fields["retention_d7"] == Decimal("66.67")
    assert fields["retention_d30"] == Decimal("50.00")
    assert fields["unsubs"] == 3 and fields["net_subs"] == 3
    assert fields["unsub_percent"] == Decimal("50.00")
    assert fields["cpc_net"] == Decimal("200.00")  # 600 / 3 who stayed
    assert fields["as_of"] == as_of


def test_retention_is_null_when_no_user_is_old_enough_and_cpc_net_when_everyone_left() -> None:
    rows = [excel(1, T0, row=2, unsub=T0 + timedelta(hours=1))]
    fields = compute_metrics(Decimal(100), totals_from_rows(rows)).fields
    assert (fields["retention_d1"], fields["retention_d7"], fields["retention_d30"]) == (None, None, None)
    assert fields["net_subs"] == 0 and fields["cpc_net"] is None
    assert fields["unsub_percent"] == Decimal("100.00")
    empty = compute_metrics(Decimal(100), totals_from_rows([])).fields
    assert empty["as_of"] is None and empty["unsub_percent"] is None and empty["cpc_net"] is None


def test_rows_without_an_action_date_count_but_have_no_period() -> None:
    rows = [
        excel(1, T0, row=2, status="sale", amount="10"),
        excel(2, T0, row=3, status="sale", amount="20", action=T0 + 2 * DAY),
        excel(3, T0, row=4, status="lead"),
    ]
    rows[1]["action_period_ms"] = 2 * 86_400_000
    fields = compute_metrics(Decimal(10), totals_from_rows(rows)).fields
    assert (fields["sales"], fields["leads"]) == (2, 1)
    assert fields["avg_sale"] == Decimal("2.00")  # the one sale with a period
    assert fields["avg_lead"] is None


# --------------------------------------------------------------------------- currencies


def test_profit_converts_exactly_and_leaves_out_currencies_without_a_rate() -> None:
    rows = [
        excel(1, T0, row=2, status="sale", amount="1990.50"),
        excel(2, T0, row=3, status="sale", amount="49.90", currency="BRL"),
        excel(3, T0, row=4, status="sale", amount="10", currency="USD"),
        excel(4, T0, row=5, status="sale", amount="5", currency="EUR"),
        excel(5, T0, row=6, status="sale", amount="7", currency="EUR"),
        excel(6, T0, row=7, status="sale", amount="1.00", currency=None),  # an older row: the report's
        platform("c1", "3.00", "GBP", None),
    ]
    fields = compute_metrics(
        Decimal(1000),
        totals_from_rows(rows, "RUB"),
        currency="RUB",
        exchange_rates={"BRL": Decimal("16.20"), "USD": Decimal("95")},
    ).fields
    # 1990.50 + 1.00 + 49.90 × 16.20 (808.38) + 10 × 95 (950)
    assert fields["profit"] == Decimal("3749.88")
    assert fields["romi"] == Decimal("274.99")  # (3749.88 − 1000) / 1000 × 100 = 274.988
    assert fields["profit_by_currency"] == {
        "BRL": Decimal("49.90"),
        "EUR": Decimal("12.00"),
        "GBP": Decimal("3.00"),
        "RUB": Decimal("1991.50"),
        "USD": Decimal("10.00"),
    }
    assert fields["warnings"] == [
        "2 sale rows in EUR have no exchange rate and are not in profit",
        "1 sale row in GBP has no exchange rate and is not in profit",
    ]


def test_the_reports_own_currency_is_always_listed_and_its_rate_is_one() -> None:
    rows = [excel(1, T0, row=2, status="sale", amount="10", currency="USD")]
    fields = compute_metrics(
        Decimal(100), totals_from_rows(rows), currency="USD", exchange_rates={"USD": Decimal("95")}
    ).fields
    assert fields["profit"] == Decimal("10.00")
    assert compute_metrics(Decimal(1), totals_from_rows([]), currency="BRL").fields["profit_by_currency"] == {
        "BRL": Decimal("0.00")
    }


def test_a_rate_with_many_digits_is_applied_exactly_then_rounded_once() -> None:
    rows = [excel(i, T0, row=i + 2, status="sale", amount="0.01", currency="USD") for i in range(3)]
    fields = compute_metrics(
        Decimal(1), totals_from_rows(rows), exchange_rates={"USD": Decimal("0.1666666666666666666666666667")}
    ).fields
    # 0.03 × 0.1666… = 0.005000… → 0.01 (half-up on the exact product, not 3 × round(0.00166…))
    assert fields["profit"] == Decimal("0.01")


# --------------------------------------------------------------------------- the links table


def test_links_table_hand_computed() -> None:
    rows = [
        excel(1, T0, row=2, link="A", status="sale", amount="300"),
        excel(1, T0 + DAY, row=3, link="B", status="sale", amount="200"),  # A: user 1's first touch
        excel(2, T0, row=4, link="A", unsub=T0 + 2 * DAY),
        excel(3, T0, row=5, link="B", status="lead"),
        excel(4, T0, row=6, link=None, status="funnel"),
        excel(5, T0 + 10 * DAY, row=7, link="B"),  # as_of = T0 + 10 days
        platform("c1", "10.00", "BRL", "A"),
        platform("c1", "5.00", "BRL", "C"),  # a platform row under a link no Excel user came through
        platform("c2", "1.00", "USD", None),  # no rate for USD: left out of every profit
    ]
    figures = compute_metrics(
        Decimal(900),
        totals_from_rows(rows, "RUB", ORDER),
        exchange_rates={"BRL": Decimal("16.2")},
        link_costs={"A": Decimal(1000), "B": Decimal(0)},
    )
    assert [entry["invite_link"] for entry in figures.links] == ["A", "B", None, "C"]  # subs 2, 2, 1, 0
    assert all(list(entry) == list(LINK_FIELDS) for entry in figures.links)
    a, b, none, c = figures.links
    assert a == {
        "invite_link": "A",
        "subs": 2,
        "unsubs": 1,
        "net_subs": 1,
        "funnel": 0,
        "leads": 0,
        "sales": 3,  # user 1's two Excel sales + the platform sale under A
        "buyers": 2,  # user 1 and platform customer c1
        "profit": Decimal("662.00"),  # 300 + 200 + 10 × 16.2
        "cost": Decimal("1000.00"),
        "romi": Decimal("-33.80"),
        "cpc": Decimal("500.00"),
        "cpc_net": Decimal("1000.00"),
        "cac": Decimal("500.00"),
        "cr_sales": Decimal("150.00"),
        "retention_d1": Decimal("100.00"),  # users 1 and 2 subscribed 10 days before as_of; 2 left after 2 days
        "retention_d7": Decimal("50.00"),
        "retention_d30": None,
    }
    # cost 0: a ratio over it (romi) is null, not infinite; ratios of it are 0; no buyer: null cac
    assert (b["cost"], b["romi"], b["cpc"], b["cpc_net"], b["cac"]) == (
        Decimal("0.00"),
        None,
        Decimal("0.00"),
        Decimal("0.00"),
        None,
    )
    assert (b["subs"], b["leads"], b["sales"], b["profit"], b["cr_sales"]) == (2, 1, 0, Decimal("0.00"), Decimal(0))
    # no cost set (and the null link can never have one): cost and its ratios are null
    assert (none["cost"], none["romi"], none["cpc"], none["cac"], none["funnel"]) == (None, None, None, None, 1)
    assert (c["subs"], c["sales"], c["buyers"], c["profit"], c["cr_sales"]) == (0, 1, 1, Decimal("81.00"), None)
    assert c["retention_d1"] is None
    assert sum(entry["profit"] for entry in figures.links) == figures.fields["profit"] == Decimal("743.00")


def test_link_profits_are_split_so_that_they_add_up_to_the_rounded_total() -> None:
    rows = [excel(i, T0, row=i + 2, link=f"L{i}", status="sale", amount="0.01", currency="USD") for i in range(3)]
    figures = compute_metrics(Decimal(1), totals_from_rows(rows), exchange_rates={"USD": Decimal("0.5")})
    # each link has 0.005 (alone each would round to 0.01: 0.03 in all), the report 0.015 → 0.02
    assert figures.fields["profit"] == Decimal("0.02")
    assert [entry["profit"] for entry in figures.links] == [Decimal("0.01"), Decimal("0.01"), Decimal("0.00")]


def test_split_rounded_gives_the_cents_to_the_largest_remainders() -> None:
    parts = [Decimal("1.004"), Decimal("2.008"), Decimal("3.007")]  # 6.019 → 6.02
    assert split_rounded(parts, sum(parts, Decimal(0))) == [Decimal("1.00"), Decimal("2.01"), Decimal("3.01")]
    assert split_rounded([], Decimal(0)) == []


def test_links_with_equal_subs_are_ordered_by_link_with_the_null_link_last() -> None:
    rows = [excel(1, T0, row=2, link=None), excel(2, T0, row=3, link="b"), excel(3, T0, row=4, link="a")]
    links = compute_metrics(Decimal(1), totals_from_rows(rows)).links
    assert [entry["invite_link"] for entry in links] == ["a", "b", None]


# --------------------------------------------------------------------------- property


CURRENCIES = ["RUB", "BRL", "USD", "EUR"]


@st.composite
def reports(draw: st.DrawFn) -> tuple[list[dict[str, Any]], dict[str, Decimal], dict[str, Decimal]]:
    links: list[str | None] = [None, "a", "b", "c"]
    n = draw(st.integers(0, 40))
    rows: list[dict[str, Any]] = []
    for i in range(n):
        sub = T0 + timedelta(hours=draw(st.integers(0, 24 * 40)))
        stay_hours = draw(st.one_of(st.none(), st.integers(0, 24 * 40)))
        unsub = None if stay_hours is None else sub + timedelta(hours=stay_hours)
        status = draw(st.sampled_from([None, "lead", "funnel", "sale"]))
        amount = str(Decimal(draw(st.integers(0, 10**7))) / 100) if status == "sale" else None
        if draw(st.booleans()):
            rows.append(
                excel(
                    draw(st.integers(1, 12)),
                    sub,
                    row=i + 2,
                    source=draw(st.sampled_from(["s1", "s2"])),
                    status=status,
                    amount=amount,
                    currency=draw(st.sampled_from([*CURRENCIES, None])),
                    link=draw(st.sampled_from(links)),
                    unsub=unsub,
                )
            )
        else:
            rows.append(
                platform(
                    draw(st.sampled_from(["c1", "c2", "c3"])),
                    amount or "0",
                    draw(st.sampled_from(CURRENCIES)),
                    draw(st.sampled_from(links)),
                    status=status or "lead",
                )
            )
    rate = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000"), places=4)
    rates = draw(st.dictionaries(st.sampled_from(CURRENCIES[1:]), rate))
    costs = draw(st.dictionaries(st.sampled_from(["a", "b", "c"]), st.decimals(0, 10**6, places=2)))
    return rows, rates, costs


@settings(max_examples=100, deadline=None)
@given(reports())
def test_the_links_add_up_to_the_report(
    report: tuple[list[dict[str, Any]], dict[str, Decimal], dict[str, Decimal]],
) -> None:
    rows, rates, costs = report
    totals = totals_from_rows(rows, "RUB", ORDER)
    figures = compute_metrics(Decimal(5000), totals, exchange_rates=rates, link_costs=costs)
    fields, links = figures.fields, figures.links
    assert sum(entry["subs"] for entry in links) == fields["subs"]
    assert sum(entry["unsubs"] for entry in links) == fields["unsubs"]
    assert sum(entry["sales"] for entry in links) == fields["sales"]
    assert sum(entry["leads"] for entry in links) == fields["leads"]
    assert sum(entry["funnel"] for entry in links) == fields["funnel"]
    assert sum((entry["profit"] for entry in links), Decimal(0)) == fields["profit"]
    assert all(entry["buyers"] <= entry["sales"] for entry in links)
    assert [entry["subs"] for entry in links] == sorted((entry["subs"] for entry in links), reverse=True)
    # each rounded share is within a cent of its exact share
    by_name = {lt.invite_link: lt for lt in totals.links}
    with_own = {**rates, "RUB": Decimal(1)}
    for entry in links:
        exact = sum(
            (
                amount * with_own[code]
                for code, amount in by_name[entry["invite_link"]].revenue.items()
                if code in with_own
            ),
            Decimal(0),
        )
        assert abs(entry["profit"] - exact) < Decimal("0.01")


def test_excel_rows_without_any_date_make_no_user_old_enough() -> None:
    # Stored by an older release (sub_date is required today): no as_of, so no retention window.
    rows = [{**excel(1, T0, row=2), "sub_date": None}, {**excel(2, T0, row=3), "sub_date": None}]
    totals = totals_from_rows(rows)
    assert totals.as_of is None and totals.subs == 2
    assert dict(totals.retention_eligible) == {1: 0, 7: 0, 30: 0}
    assert compute_metrics(Decimal(1), totals).fields["retention_d1"] is None
