"""Domain: the report metrics of SPEC §4, §4.1 and §4.2, computed exactly from aggregated totals.

No I/O here. One pure function of (budget, report currency, exchange rates, link costs, totals)
gives the report's fields and its links table. Money and ratios are Decimal, computed in a
context wide enough that no intermediate value is rounded; every ratio whose divisor is zero (or
whose inputs are missing) is None; rounding is half-up to 2 decimals, once, at the very end.
Amounts in a currency without a rate are left out of profit, and a warning says how many rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Context, Decimal, localcontext
from typing import Any, Final

from shared.reports import LINK_FIELD_NAMES, REPORT_METRIC_NAMES
from shared.sale_rows import MS_PER_DAY
from shared.totals import RETENTION_DAYS, LinkTotals, Totals, link_sort_key

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
# Amounts (< 10^15, 2 decimals) × a million rows × a rate of any precision fit in 80 digits:
# conversion and every ratio are exact until the one rounding at the end.
EXACT: Final = Context(prec=80)


def _ratio(numerator: Decimal | int | None, divisor: Decimal | int | None, scale: int = 1) -> Decimal | None:
    if numerator is None or divisor is None or divisor == 0:
        return None
    return Decimal(numerator) * scale / Decimal(divisor)


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class ReportFigures:
    """The report document's metric fields, and its links table entries in answer order."""

    fields: dict[str, Any]
    links: list[dict[str, Any]]


def _rates_with_own(currency: str, rates: Mapping[str, Decimal]) -> dict[str, Decimal]:
    """Report-currency units per unit, the report's own currency at 1."""
    return {**{code: Decimal(rate) for code, rate in rates.items()}, currency: Decimal(1)}


def _converted(revenue: Mapping[str, Decimal], rates: Mapping[str, Decimal]) -> Decimal:
    total = Decimal(0)
    for code, amount in revenue.items():
        rate = rates.get(code)
        if rate is not None:
            total += amount * rate
    return total


def _warning(code: str, rows: int) -> str:
    if rows == 1:
        return f"1 sale row in {code} has no exchange rate and is not in profit"
    return f"{rows} sale rows in {code} have no exchange rate and are not in profit"


def _retention(eligible: Mapping[int, int], kept: Mapping[int, int]) -> dict[str, Decimal | None]:
    return {f"retention_d{n}": _ratio(kept.get(n, 0), eligible.get(n, 0), 100) for n in RETENTION_DAYS}


def split_rounded(parts: Sequence[Decimal], total: Decimal) -> list[Decimal]:
    """Rounds each part to cents so that the rounded parts add up to `total` rounded half-up
    (largest remainder: every part is floored, and the cents left over go to the parts with the
    largest remainders, the first of equal ones first). Rounding each part alone can be a cent off."""
    target = total.quantize(CENT, rounding=ROUND_HALF_UP)
    floors = [part.quantize(CENT, rounding=ROUND_FLOOR) for part in parts]
    left = int(((target - sum(floors, Decimal(0))) / CENT).to_integral_value())
    if left <= 0:
        return floors
    by_remainder = sorted(range(len(parts)), key=lambda i: -(parts[i] - floors[i]))
    for i in by_remainder[:left]:
        floors[i] += CENT
    return floors


def compute_metrics(
    budget: Decimal,
    totals: Totals,
    *,
    currency: str = "RUB",
    exchange_rates: Mapping[str, Decimal] | None = None,
    link_costs: Mapping[str, Decimal] | None = None,
) -> ReportFigures:
    """Every metric field of the report document and the links table, rounded once."""
    with localcontext(EXACT):
        return _compute(budget, totals, currency, exchange_rates or {}, link_costs or {})


def _compute(
    budget: Decimal,
    totals: Totals,
    currency: str,
    exchange_rates: Mapping[str, Decimal],
    link_costs: Mapping[str, Decimal],
) -> ReportFigures:
    rates = _rates_with_own(currency, exchange_rates)
    profit = _converted(totals.revenue, rates)
    funnel = totals.counts.get("funnel", 0)
    leads = totals.counts.get("lead", 0)
    sales = totals.counts.get("sale", 0)
    net_subs = totals.subs - totals.unsubs
    raw: dict[str, Decimal | None] = {
        "profit": profit,
        "romi": _ratio(profit - budget, budget, 100),
        "cpc": _ratio(budget, totals.subs),
        "cpf": _ratio(budget, funnel),
        "cpl": _ratio(budget, leads),
        "cac": _ratio(budget, totals.buyers),
        "cr_funnel": _ratio(funnel, totals.subs, 100),
        "cr_leads": _ratio(leads, totals.subs, 100),
        "cr_sales": _ratio(sales, totals.subs, 100),
        "premium_percent": _ratio(totals.premium_users, totals.subs, 100),
        "username_percent": _ratio(totals.username_users, totals.subs, 100),
        "unsub_percent": _ratio(totals.unsubs, totals.subs, 100),
        "cpc_net": _ratio(budget, net_subs),
        **_retention(totals.retention_eligible, totals.retention_kept),
    }
    for status, name in (("funnel", "avg_funnel"), ("lead", "avg_lead"), ("sale", "avg_sale")):
        n = totals.period_n.get(status, 0)
        raw[name] = _ratio(totals.period_ms_sum.get(status, 0), n * MS_PER_DAY) if n else None
    fields: dict[str, Any] = {name: _round(value) for name, value in raw.items()}
    by_currency = {code: Decimal(0) for code in (currency,)}
    by_currency.update(totals.revenue)
    fields.update(
        {
            "subs": totals.subs,
            "funnel": funnel,
            "leads": leads,
            "sales": sales,
            "unsubs": totals.unsubs,
            "net_subs": net_subs,
            "as_of": totals.as_of,
            "profit_by_currency": {code: _round(amount) for code, amount in sorted(by_currency.items())},
            "warnings": [
                _warning(code, totals.revenue_rows.get(code, 0))
                for code in sorted(totals.revenue_rows)
                if code not in rates and totals.revenue_rows.get(code, 0) > 0
            ],
        }
    )
    # The declared figures, in their order: one declared but not computed here fails at once.
    declared = {name: fields[name] for name in REPORT_METRIC_NAMES}
    return ReportFigures(
        fields={**declared, "as_of": fields["as_of"]}, links=_links(totals.links, profit, rates, link_costs)
    )


def _links(
    links: Sequence[LinkTotals],
    profit: Decimal,
    rates: Mapping[str, Decimal],
    link_costs: Mapping[str, Decimal],
) -> list[dict[str, Any]]:
    ordered = sorted(links, key=lambda link: (-link.subs, *link_sort_key(link.invite_link)))
    profits = [_converted(link.revenue, rates) for link in ordered]
    rounded_profits = split_rounded(profits, profit)
    entries: list[dict[str, Any]] = []
    for link, link_profit, shown_profit in zip(ordered, profits, rounded_profits, strict=True):
        cost = None if link.invite_link is None else link_costs.get(link.invite_link)
        cost = None if cost is None else Decimal(cost)
        net_subs = link.subs - link.unsubs
        raw: dict[str, Decimal | None] = {
            "cost": cost,
            "romi": None if cost is None else _ratio(link_profit - cost, cost, 100),
            "cpc": _ratio(cost, link.subs),
            "cpc_net": _ratio(cost, net_subs),
            "cac": _ratio(cost, link.buyers),
            "cr_sales": _ratio(link.sales, link.subs, 100),
            **_retention(link.retention_eligible, link.retention_kept),
        }
        values: dict[str, Any] = {name: _round(value) for name, value in raw.items()}
        values.update(
            invite_link=link.invite_link,
            subs=link.subs,
            unsubs=link.unsubs,
            net_subs=net_subs,
            funnel=link.funnel,
            leads=link.leads,
            sales=link.sales,
            buyers=link.buyers,
            profit=shown_profit,
        )
        entries.append({name: values[name] for name in LINK_FIELD_NAMES})
    return entries
