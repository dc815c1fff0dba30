"""Domain: the report metrics of SPEC §4, computed exactly from aggregated totals.

No I/O here. Money and ratios are Decimal; every ratio whose divisor is zero (or whose inputs
are missing) is None; rounding is half-up to 2 decimals, once, at the very end.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
HUNDRED = Decimal(100)
MS_PER_DAY = Decimal(86_400_000)
ACTION_STATUSES = ("funnel", "lead", "sale")
# Rows whose amount is revenue: sales, and the OFD day totals (which have no buyer).
REVENUE_STATUSES = ("sale", "revenue")


@dataclass(frozen=True)
class Totals:
    """What one pass over a report's sale rows yields."""

    subs: int = 0  # distinct users of the Excel sources (U)
    premium_users: int = 0  # users in U with is_premium on any of their rows
    username_users: int = 0  # users in U with a non-empty username on any row
    buyers: int = 0  # distinct users (or platform customers) with at least one sale row
    counts: Mapping[str, int] = field(default_factory=dict)  # rows per status
    profit: Decimal = Decimal(0)
    period_ms_sum: Mapping[str, int] = field(default_factory=dict)  # per status, rows with a period
    period_n: Mapping[str, int] = field(default_factory=dict)


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


class TotalsFold:
    """Folds sale rows one at a time into `Totals`: the reference the database aggregation is
    tested against, and analytics' own scan strategy. Memory is four sets of user keys, not rows."""

    def __init__(self) -> None:
        self.users: set[object] = set()  # U: keys seen on Excel rows
        self.premium: set[object] = set()
        self.named: set[object] = set()
        self.buyers: set[object] = set()
        self.counts: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.period_sum: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.period_n: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.profit = Decimal(0)

    def add(self, row: Mapping[str, Any]) -> None:
        status = row.get("status")
        key = row.get("user_id")
        if key is None:
            key = row.get("customer_key")
        if key is not None and row.get("source") == "excel":
            self.users.add(key)
            if row.get("is_premium"):
                self.premium.add(key)
            if row.get("username"):
                self.named.add(key)
        if status in self.counts:
            self.counts[status] += 1
            period = row.get("action_period_ms")
            if period is not None:
                self.period_sum[status] += int(period)
                self.period_n[status] += 1
        if status in REVENUE_STATUSES:
            amount = row.get("purchase_amount")
            if amount is not None:
                self.profit += amount.to_decimal() if hasattr(amount, "to_decimal") else Decimal(str(amount))
        if status == "sale" and key is not None:
            self.buyers.add(key)

    def result(self) -> Totals:
        return Totals(
            subs=len(self.users),
            premium_users=len(self.premium),
            username_users=len(self.named),
            buyers=len(self.buyers),
            counts=dict(self.counts),
            profit=self.profit,
            period_ms_sum=dict(self.period_sum),
            period_n=dict(self.period_n),
        )


def totals_from_rows(rows: Iterable[Mapping[str, Any]]) -> Totals:
    """The totals of rows already in memory (see `TotalsFold`)."""
    fold = TotalsFold()
    for row in rows:
        fold.add(row)
    return fold.result()
