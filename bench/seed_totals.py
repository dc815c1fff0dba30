"""The report totals fold as it was before issue 16 (no currencies, first touches, retention or
links), frozen here as the baseline of `bench.recompute`: "the current recompute" measured in the
same run as the one that adds the links. Not used by the product."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
