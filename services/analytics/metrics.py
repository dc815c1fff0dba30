"""Domain: the report metrics of SPEC §4, computed exactly from aggregated totals.

No I/O here. Money and ratios are Decimal; every ratio whose divisor is zero (or whose inputs
are missing) is None; rounding is half-up to 2 decimals, once, at the very end.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from shared.totals import Totals

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MS_PER_DAY = Decimal(86_400_000)


def _ratio(numerator: Decimal | int | None, divisor: Decimal | int | None, scale: int = 1) -> Decimal | None:
    if numerator is None or divisor is None or divisor == 0:
        return None
    return Decimal(numerator) * scale / Decimal(divisor)


def _round(value: Decimal | None) -> Decimal | None:
    return None if value is None else value.quantize(CENT, rounding=ROUND_HALF_UP)


def compute_metrics(budget: Decimal, totals: Totals) -> dict[str, Any]:
    """Every metric field of the report document, rounded once."""
    funnel = totals.counts.get("funnel", 0)
    leads = totals.counts.get("lead", 0)
    sales = totals.counts.get("sale", 0)
    raw: dict[str, Decimal | None] = {
        "profit": totals.profit,
        "romi": _ratio(totals.profit - budget, budget, 100),
        "cpc": _ratio(budget, totals.subs),
        "cpf": _ratio(budget, funnel),
        "cpl": _ratio(budget, leads),
        "cac": _ratio(budget, totals.buyers),
        "cr_funnel": _ratio(funnel, totals.subs, 100),
        "cr_leads": _ratio(leads, totals.subs, 100),
        "cr_sales": _ratio(sales, totals.subs, 100),
        "premium_percent": _ratio(totals.premium_users, totals.subs, 100),
        "username_percent": _ratio(totals.username_users, totals.subs, 100),
    }
    for status, name in (("funnel", "avg_funnel"), ("lead", "avg_lead"), ("sale", "avg_sale")):
        n = totals.period_n.get(status, 0)
        raw[name] = _ratio(totals.period_ms_sum.get(status, 0), n * MS_PER_DAY) if n else None
    result: dict[str, Any] = {name: _round(value) for name, value in raw.items()}
    result.update({"subs": totals.subs, "funnel": funnel, "leads": leads, "sales": sales})
    return result
