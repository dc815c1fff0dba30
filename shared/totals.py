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

Memory of the fold: one small list per Excel user (first touch + that user's counts, ≈ 250 bytes
with its dict entry in CPython) and the user-key sets the seed already kept; per link a few
counters and the keys of its buyers. Never a list of rows.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final

from bson import Decimal128, Int64

from shared.currency import DEFAULT_CURRENCY

ACTION_STATUSES = ("funnel", "lead", "sale")
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
        self.eligible = _zero_by_day()
        self.kept = _zero_by_day()

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
            retention_eligible=dict(self.eligible),
            retention_kept=dict(self.kept),
        )


_STATUS_INDEX: Final = {"funnel": 0, "lead": 1, "sale": 2}
# Slots of a user's state list (a list, not an object: a million of them must stay small and fast).
_SUB, _ORDER, _UNSUB, _LINK, _FUNNEL, _LEAD, _SALE, _REVENUE = range(8)


def _amount(value: Any) -> Decimal:
    return value.to_decimal() if hasattr(value, "to_decimal") else Decimal(str(value))


def link_sort_key(link: str | None) -> tuple[bool, str]:
    return (link is None, link or "")


class TotalsFold:
    """Folds sale rows one at a time into `Totals`: the reference the database aggregation is
    tested against, and analytics' own scan strategy.

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

    def add(self, row: Mapping[str, Any]) -> None:
        status = row.get("status")
        key = row.get("user_id")
        if key is None:
            key = row.get("customer_key")
        amount = None
        currency = ""
        if status in REVENUE_STATUSES:
            raw = row.get("purchase_amount")
            if raw is not None:
                amount = _amount(raw)
                currency = row.get("currency") or self.report_currency
                self.revenue[currency] = self.revenue.get(currency, 0) + amount
                self.revenue_rows[currency] = self.revenue_rows.get(currency, 0) + 1
        if status in self.counts:
            self.counts[status] += 1
            period = row.get("action_period_ms")
            if period is not None:
                self.period_sum[status] += int(period)
                self.period_n[status] += 1
            if status == "sale" and key is not None:
                self.buyers.add(key)
        if row.get("source") == "excel":
            sub = row.get("sub_date")
            unsub = row.get("unsub_date")
            for moment in (sub, unsub, row.get("action_date")):
                if moment is not None and (self.as_of is None or moment > self.as_of):
                    self.as_of = moment
            if key is not None:
                self._add_user_row(row, key, status, sub, unsub, amount, currency)
                return
        link_fold = self.own_links.get(row.get("invite_link"))
        if link_fold is None:
            link_fold = self.own_links[row.get("invite_link")] = _LinkFold()
        index = _STATUS_INDEX.get(status)  # type: ignore[arg-type]
        if index is not None:
            link_fold.counts[index] += 1
            if index == 2 and key is not None:
                link_fold.buyer_keys.add(key)
        if amount is not None:
            link_fold.revenue[currency] = link_fold.revenue.get(currency, 0) + amount

    def _add_user_row(
        self,
        row: Mapping[str, Any],
        key: object,
        status: Any,
        sub: datetime | None,
        unsub: datetime | None,
        amount: Decimal | None,
        currency: str,
    ) -> None:
        if row.get("is_premium"):
            self.premium.add(key)
        if row.get("username"):
            self.named.add(key)
        order = self.source_order.get(row.get("source_report_id"), -1) * ORDER_STRIDE + (row.get("row") or 0)  # type: ignore[arg-type]
        touch = sub if sub is not None else _EARLIEST
        user = self.users.get(key)
        if user is None:
            user = self.users[key] = [touch, order, unsub, row.get("invite_link"), 0, 0, 0, None]
        elif touch < user[_SUB] or (touch == user[_SUB] and order < user[_ORDER]):
            user[_SUB] = touch
            user[_ORDER] = order
            user[_UNSUB] = unsub
            user[_LINK] = row.get("invite_link")
        index = _STATUS_INDEX.get(status)
        if index is not None:
            user[_FUNNEL + index] += 1
        if amount is not None:
            revenue = user[_REVENUE]
            if revenue is None:
                user[_REVENUE] = {currency: amount}
            else:
                revenue[currency] = revenue.get(currency, 0) + amount

    def result(self) -> Totals:
        links: dict[str | None, _LinkFold] = {}
        for link, own in self.own_links.items():
            links[link] = own
        unsubs = 0
        eligible = _zero_by_day()
        kept = _zero_by_day()
        as_of = self.as_of
        # A user of sub_date s is old enough for N days when s <= as_of - N days.
        cutoffs = {n: as_of - delta for n, delta in _DAYS.items()} if as_of is not None else {}
        for key, user in self.users.items():
            sub, _, unsub, link, funnel, lead, sale, revenue = user
            fold = links.get(link)
            if fold is None:
                fold = links[link] = _LinkFold()
            fold.subs += 1
            if unsub is not None:
                fold.unsubs += 1
                unsubs += 1
            counts = fold.counts
            counts[0] += funnel
            counts[1] += lead
            counts[2] += sale
            if sale:
                fold.buyer_keys.add(key)
            if revenue is not None:
                for currency, amount in revenue.items():
                    fold.revenue[currency] = fold.revenue.get(currency, 0) + amount
            for n, cutoff in cutoffs.items():
                if sub <= cutoff:
                    eligible[n] += 1
                    fold.eligible[n] += 1
                    if unsub is None or unsub >= sub + _DAYS[n]:
                        kept[n] += 1
                        fold.kept[n] += 1
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
            retention_eligible=eligible,
            retention_kept=kept,
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
