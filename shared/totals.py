"""Totals of a set of sale rows: what one pass over them yields, and the fold that computes it.

Domain only, no I/O. Analytics folds a report's rows into `Totals` to compute its metrics; ingest
folds an Excel file's rows as it stores them, so that a report made of that one file needs no
second pass (`to_document` / `from_document` keep totals on the source report).

Besides the seed's counts, one pass yields (SPEC §4.1, §4.2):
- revenue per currency (never one sum across currencies: conversion happens in the metrics, with
  the report's rates), and the number of revenue rows per currency (for the warnings);
- each Excel user's first touch: the row with the earliest `sub_date`, ties broken by file order
  (the source's creation order, then the Excel row); its `sub_date`, `unsub_date`, `invite_link`
  are the user's, which gives `unsubs` and the retention counts;
- `as_of`, the latest date of any Excel row;
- the same figures per invite link: Excel rows belong to their user's first-touch link, other
  rows to their own `invite_link` (None = no link). The links' subs, counts and revenue add up to
  the report's.

Memory of the fold: one small list per Excel user (first touch + that user's counts, with its
dict entry; its size is in docs/benchmarks.md, "Report recompute") and the user-key sets the seed
already kept; per link a few counters and the keys of its buyers. Never a list of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bson import Decimal128, Int64

from shared.currency import DEFAULT_CURRENCY
from shared.decimal128 import stored_decimal
from shared.sale_rows import ACTION_STATUSES

# Rows whose amount is revenue: sales, and the OFD day totals (which have no buyer).
REVENUE_STATUSES = ("sale", "revenue")
# Retention windows of SPEC §4.2, in days.
RETENTION_DAYS: Final = (1, 7, 30)
# File order of an Excel row: its source's position among the report's sources (by creation),
# then its Excel row; one integer so that the database compares it like the fold does.
ORDER_STRIDE: Final = 2**32
# Stored totals of an older release lack the currencies, first touches and links.
DOCUMENT_VERSION: Final = 2
_DAYS: Final = {n: timedelta(days=n) for n in RETENTION_DAYS}
# The fold's retention loop is unrolled for these windows.
assert RETENTION_DAYS == (1, 7, 30)
_DAY_1, _DAY_7, _DAY_30 = (timedelta(days=n) for n in RETENTION_DAYS)
# Stand-in for a missing sub_date when first touches are compared (the database sorts null first).
_EARLIEST: Final = datetime.min.replace(tzinfo=UTC)


def _zero_by_day() -> dict[int, int]:
    return dict.fromkeys(RETENTION_DAYS, 0)


@dataclass(frozen=True)
class LinkTotals:
    """One invite link's share of a report's rows (None = rows without a link)."""

    invite_link: str | None
    subs: int = 0  # Excel users whose first touch has this link
    unsubs: int = 0  # of them, those whose first touch has an unsub_date
    funnel: int = 0
    leads: int = 0
    sales: int = 0
    buyers: int = 0  # distinct keys with a sale row attributed to this link
    revenue: Mapping[str, Decimal] = field(default_factory=dict)  # per currency, original amounts
    retention_eligible: Mapping[int, int] = field(default_factory=_zero_by_day)
    retention_kept: Mapping[int, int] = field(default_factory=_zero_by_day)


@dataclass(frozen=True)
class Totals:
    """What one pass over a report's sale rows yields."""

    subs: int = 0  # distinct users of the Excel sources (U)
    premium_users: int = 0  # users in U with is_premium on any of their rows
    username_users: int = 0  # users in U with a non-empty username on any row
    buyers: int = 0  # distinct users (or platform customers) with at least one sale row
    counts: Mapping[str, int] = field(default_factory=dict)  # rows per status
    revenue: Mapping[str, Decimal] = field(default_factory=dict)  # revenue rows' amounts per currency
    revenue_rows: Mapping[str, int] = field(default_factory=dict)  # revenue rows with an amount, per currency
    period_ms_sum: Mapping[str, int] = field(default_factory=dict)  # per status, rows with a period
    period_n: Mapping[str, int] = field(default_factory=dict)
    unsubs: int = 0  # users in U whose first touch has an unsub_date
    as_of: datetime | None = None  # latest sub/unsub/action date of the Excel rows
    retention_eligible: Mapping[int, int] = field(default_factory=_zero_by_day)  # users old enough, per N
    retention_kept: Mapping[int, int] = field(default_factory=_zero_by_day)  # of them, still there after N days
    links: tuple[LinkTotals, ...] = ()  # sorted by invite_link, None last


class _LinkFold:
    __slots__ = ("buyer_keys", "counts", "eligible", "kept", "revenue", "subs", "unsubs")

    def __init__(self) -> None:
        self.subs = 0
        self.unsubs = 0
        self.counts = [0, 0, 0]  # funnel, lead, sale
        self.buyer_keys: set[object] = set()
        self.revenue: dict[str, Decimal] = {}
        self.eligible = [0] * len(RETENTION_DAYS)
        self.kept = [0] * len(RETENTION_DAYS)

    def result(self, link: str | None) -> LinkTotals:
        return LinkTotals(
            invite_link=link,
            subs=self.subs,
            unsubs=self.unsubs,
            funnel=self.counts[0],
            leads=self.counts[1],
            sales=self.counts[2],
            buyers=len(self.buyer_keys),
            revenue=dict(self.revenue),
            retention_eligible=dict(zip(RETENTION_DAYS, self.eligible, strict=True)),
            retention_kept=dict(zip(RETENTION_DAYS, self.kept, strict=True)),
        )


_STATUS_INDEX: Final = {"funnel": 0, "lead": 1, "sale": 2}
# Slots of a user's state list (a list, not an object: a million of them must stay small and fast).
# The first touch's sub_date, source and row (the file order, turned into a number only on a tie),
# unsub_date and link; then the user's row counts per status and revenue per currency (or None).
_SUB, _SOURCE, _ROW, _UNSUB, _LINK, _FUNNEL, _LEAD, _SALE, _REVENUE = range(9)


def link_sort_key(link: str | None) -> tuple[bool, str]:
    return (link is None, link or "")


class TotalsFold:
    """Folds sale rows one at a time into `Totals`: the reference the database aggregation is
    tested against, and analytics' own scan strategy (so `add` is written for speed: a million
    rows feel every lookup).

    `report_currency` is the currency of rows stored without one (an older release);
    `source_order` maps each source report id to its position among the report's sources (by
    creation): the file order that breaks ties between first touches with the same sub_date."""

    def __init__(self, report_currency: str = DEFAULT_CURRENCY, source_order: Mapping[str, int] | None = None) -> None:
        self.report_currency = report_currency
        self.source_order = dict(source_order or {})
        self.users: dict[object, list[Any]] = {}  # U: Excel user key → first touch and counts
        self.premium: set[object] = set()
        self.named: set[object] = set()
        self.buyers: set[object] = set()
        self.counts: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.period_sum: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.period_n: dict[str, int] = dict.fromkeys(ACTION_STATUSES, 0)
        self.revenue: dict[str, Decimal] = {}
        self.revenue_rows: dict[str, int] = {}
        self.as_of: datetime | None = None
        # Rows that are not an Excel user's, by their own invite link.
        self.own_links: dict[str | None, _LinkFold] = {}

    def _order(self, source: Any, row: Any) -> int:
        return self.source_order.get(source, -1) * ORDER_STRIDE + (row or 0)

    def add(self, row: Mapping[str, Any]) -> None:
        get = row.get
        status = get("status")
        key = get("user_id")
        if key is None:
            key = get("customer_key")
        amount = None
        currency = ""
        index = None
        if status is not None:
            if status in REVENUE_STATUSES:
                raw = get("purchase_amount")
                if raw is not None:
                    amount = stored_decimal(raw)
                    currency = get("currency") or self.report_currency
                    revenue = self.revenue
                    revenue[currency] = revenue.get(currency, 0) + amount
                    self.revenue_rows[currency] = self.revenue_rows.get(currency, 0) + 1
            index = _STATUS_INDEX.get(status)
            if index is not None:
                self.counts[status] += 1
                period = get("action_period_ms")
                if period is not None:
                    self.period_sum[status] += int(period)
                    self.period_n[status] += 1
                if index == 2 and key is not None:
                    self.buyers.add(key)
        if get("source") == "excel":
            sub = get("sub_date")
            unsub = get("unsub_date")
            latest = sub
            if unsub is not None and (latest is None or unsub > latest):
                latest = unsub
            action = get("action_date")
            if action is not None and (latest is None or action > latest):
                latest = action
            if latest is not None and (self.as_of is None or latest > self.as_of):
                self.as_of = latest
            if key is not None:
                if get("is_premium"):
                    self.premium.add(key)
                if get("username"):
                    self.named.add(key)
                if sub is None:
                    sub = _EARLIEST
                user = self.users.get(key)
                if user is None:
                    user = self.users[key] = [
                        sub,
                        get("source_report_id"),
                        get("row"),
                        unsub,
                        get("invite_link"),
                        0,
                        0,
                        0,
                        None,
                    ]
                elif sub < user[_SUB] or (
                    sub == user[_SUB]
                    and self._order(get("source_report_id"), get("row")) < self._order(user[_SOURCE], user[_ROW])
                ):
                    user[_SUB] = sub
                    user[_SOURCE] = get("source_report_id")
                    user[_ROW] = get("row")
                    user[_UNSUB] = unsub
                    user[_LINK] = get("invite_link")
                if index is not None:
                    user[_FUNNEL + index] += 1
                if amount is not None:
                    user_revenue = user[_REVENUE]
                    if user_revenue is None:
                        user[_REVENUE] = {currency: amount}
                    else:
                        user_revenue[currency] = user_revenue.get(currency, 0) + amount
                return
        link = get("invite_link")
        link_fold = self.own_links.get(link)
        if link_fold is None:
            link_fold = self.own_links[link] = _LinkFold()
        if index is not None:
            link_fold.counts[index] += 1
            if index == 2 and key is not None:
                link_fold.buyer_keys.add(key)
        if amount is not None:
            link_fold.revenue[currency] = link_fold.revenue.get(currency, 0) + amount

    def result(self) -> Totals:
        links: dict[str | None, _LinkFold] = dict(self.own_links)
        unsubs = 0
        eligible = [0] * len(RETENTION_DAYS)
        kept = [0] * len(RETENTION_DAYS)
        as_of = self.as_of
        # A user of sub_date s is old enough for N days when s <= as_of - N days, and stayed when
        # it has no unsub_date or unsub_date - s >= N days.
        dated = as_of is not None  # without any date, no user is old enough for any window
        cut_1, cut_7, cut_30 = (as_of - _DAYS[n] if as_of is not None else _EARLIEST for n in RETENTION_DAYS)
        for key, user in self.users.items():
            sub, _, _, unsub, link, funnel, lead, sale, revenue = user
            fold = links.get(link)
            if fold is None:
                fold = links[link] = _LinkFold()
            fold.subs += 1
            stay = None
            if unsub is not None:
                fold.unsubs += 1
                unsubs += 1
                stay = unsub - sub
            if funnel or lead or sale:
                counts = fold.counts
                counts[0] += funnel
                counts[1] += lead
                counts[2] += sale
                if sale:
                    fold.buyer_keys.add(key)
            if revenue is not None:
                link_revenue = fold.revenue
                for currency, amount in revenue.items():
                    link_revenue[currency] = link_revenue.get(currency, 0) + amount
            # The three windows unrolled (RETENTION_DAYS is asserted to be 1, 7, 30 above).
            if dated and sub <= cut_1:
                link_eligible = fold.eligible
                link_kept = fold.kept
                link_eligible[0] += 1
                if stay is None or stay >= _DAY_1:
                    link_kept[0] += 1
                if sub <= cut_7:
                    link_eligible[1] += 1
                    if stay is None or stay >= _DAY_7:
                        link_kept[1] += 1
                    if sub <= cut_30:
                        link_eligible[2] += 1
                        if stay is None or stay >= _DAY_30:
                            link_kept[2] += 1
        for fold in links.values():
            for i in range(len(RETENTION_DAYS)):
                eligible[i] += fold.eligible[i]
                kept[i] += fold.kept[i]
        return Totals(
            subs=len(self.users),
            premium_users=len(self.premium),
            username_users=len(self.named),
            buyers=len(self.buyers),
            counts=dict(self.counts),
            revenue=dict(self.revenue),
            revenue_rows=dict(self.revenue_rows),
            period_ms_sum=dict(self.period_sum),
            period_n=dict(self.period_n),
            unsubs=unsubs,
            as_of=as_of,
            retention_eligible=dict(zip(RETENTION_DAYS, eligible, strict=True)),
            retention_kept=dict(zip(RETENTION_DAYS, kept, strict=True)),
            links=tuple(links[link].result(link) for link in sorted(links, key=link_sort_key)),
        )


def totals_from_rows(
    rows: Iterable[Mapping[str, Any]],
    report_currency: str = DEFAULT_CURRENCY,
    source_order: Mapping[str, int] | None = None,
) -> Totals:
    """The totals of rows already in memory (see `TotalsFold`)."""
    fold = TotalsFold(report_currency, source_order)
    for row in rows:
        fold.add(row)
    return fold.result()


# --------------------------------------------------------------------------- stored form


def _money_map(values: Mapping[str, Decimal]) -> dict[str, Decimal128]:
    return {code: Decimal128(amount) for code, amount in values.items()}


def _by_day(values: Mapping[int, int]) -> dict[str, int]:
    return {str(n): int(values.get(n, 0)) for n in RETENTION_DAYS}


def _decimal(value: Any) -> Decimal:
    return value.to_decimal() if isinstance(value, Decimal128) else Decimal(value)


def _days_from(doc: Mapping[str, Any]) -> dict[int, int]:
    return {n: int(doc.get(str(n), 0)) for n in RETENTION_DAYS}


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def to_document(totals: Totals) -> dict[str, Any]:
    return {
        "version": DOCUMENT_VERSION,
        "subs": totals.subs,
        "premium_users": totals.premium_users,
        "username_users": totals.username_users,
        "buyers": totals.buyers,
        "counts": dict(totals.counts),
        "revenue": _money_map(totals.revenue),
        "revenue_rows": dict(totals.revenue_rows),
        "period_ms_sum": {k: Int64(v) for k, v in totals.period_ms_sum.items()},
        "period_n": dict(totals.period_n),
        "unsubs": totals.unsubs,
        "as_of": totals.as_of,
        "retention_eligible": _by_day(totals.retention_eligible),
        "retention_kept": _by_day(totals.retention_kept),
        "links": [
            {
                "invite_link": link.invite_link,
                "subs": link.subs,
                "unsubs": link.unsubs,
                "funnel": link.funnel,
                "leads": link.leads,
                "sales": link.sales,
                "buyers": link.buyers,
                "revenue": _money_map(link.revenue),
                "retention_eligible": _by_day(link.retention_eligible),
                "retention_kept": _by_day(link.retention_kept),
            }
            for link in totals.links
        ],
    }


def is_current_document(doc: Mapping[str, Any] | None) -> bool:
    """Stored totals this release can read (an older release stored no currencies or links)."""
    return bool(doc) and doc.get("version") == DOCUMENT_VERSION  # type: ignore[union-attr]


def from_document(doc: Mapping[str, Any]) -> Totals:
    return Totals(
        subs=int(doc["subs"]),
        premium_users=int(doc["premium_users"]),
        username_users=int(doc["username_users"]),
        buyers=int(doc["buyers"]),
        counts={k: int(v) for k, v in doc["counts"].items()},
        revenue={k: _decimal(v) for k, v in doc["revenue"].items()},
        revenue_rows={k: int(v) for k, v in doc["revenue_rows"].items()},
        period_ms_sum={k: int(v) for k, v in doc["period_ms_sum"].items()},
        period_n={k: int(v) for k, v in doc["period_n"].items()},
        unsubs=int(doc["unsubs"]),
        as_of=_as_utc(doc["as_of"]),
        retention_eligible=_days_from(doc["retention_eligible"]),
        retention_kept=_days_from(doc["retention_kept"]),
        links=tuple(
            LinkTotals(
                invite_link=link["invite_link"],
                subs=int(link["subs"]),
                unsubs=int(link["unsubs"]),
                funnel=int(link["funnel"]),
                leads=int(link["leads"]),
                sales=int(link["sales"]),
                buyers=int(link["buyers"]),
                revenue={k: _decimal(v) for k, v in link["revenue"].items()},
                retention_eligible=_days_from(link["retention_eligible"]),
                retention_kept=_days_from(link["retention_kept"]),
            )
            for link in doc["links"]
        ),
    )
