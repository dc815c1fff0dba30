"""The stored sale row, whatever its source. Rows are stored packed into chunk documents of the
`sales` collection (`shared/sale_chunks.py`), each row inside a chunk in exactly this shape.

Every writer (ingest for Excel files and `sale recorded` events, connectors for platform sales)
produces exactly this shape; analytics aggregates it and the gateway lists it.

    _id               str       "<source_report_id>:<row key>" — deterministic; a row stored on
                                its own is the chunk of that `_id`, so a replayed write is a
                                duplicate-key no-op or a replacement, never a second row
    report_id         str
    source_report_id  str
    channel_id        Int64
    creator_id        int
    source            "excel" | "event" | "sweetclub" | "eduzz" | "ofd"
    row               int | None      1-based Excel row (Excel sources only)
    user_id           Int64 | None    Telegram user id (always set for Excel rows)
    customer_key      str | None      buyer identity from a platform when no Telegram id is known
    name, product, username, photo_url, phone_number, invite_link   str | None
                      (invite_link of connector rows: the Telegram link found in their own
                      UTM / tracker fields, else None)
    is_premium        bool
    birthdate         datetime | None (midnight UTC of the date)
    status            "lead" | "sale" | "funnel" | "refunded" | "revenue" | None
                      (None = subscriber without action; "revenue" = OFD day total, no user)
    purchase_amount   Decimal128 | None   the ORIGINAL amount, in `currency` (converted only when
                                metrics are computed, with the report's exchange rates)
    currency          str             ISO 4217 code of purchase_amount, set on every row written
                                since issue 16 (rows without an amount too): Excel `currency`
                                column, else the sign in the amount cell, else the report's;
                                events' own, else the report's; SweetClub `currency_code`,
                                Eduzz BRL (or the connection's option), OFD RUB. A row stored
                                without one (an older release) is in the report's currency.
    sub_date, unsub_date, action_date   datetime (UTC) | None
    action_period_ms  Int64 | None    action_date − sub_date in milliseconds
    extra             dict | None     platform fields kept as they came (connectors)

`SaleRow` declares exactly this; `tests/unit/test_sale_row_shape.py` holds every builder to it
(the connectors' in `tests/unit/sale_row_shape_at_merge.py` until issue 17 merges).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal, TypedDict, get_args

from bson import Decimal128, Int64

SaleSource = Literal["excel", "event", "sweetclub", "eduzz", "ofd"]
SaleStatus = Literal["lead", "sale", "funnel", "refunded", "revenue"]
# The statuses a seller's Excel row may carry (SPEC §3), in the SPEC's order: what the sales
# listing filters on, what the template offers and what the totals count.
ActionStatus = Literal["lead", "sale", "funnel"]
ACTION_STATUSES: Final[tuple[ActionStatus, ...]] = get_args(ActionStatus)
# `action_period_ms` / MS_PER_DAY = the `action_period` in days the API shows.
MS_PER_DAY: Final = 86_400_000


class Owned(TypedDict):
    """The identity and owner fields a row and its chunk both carry (what ownership checks,
    deletions and refunds filter on)."""

    _id: str
    report_id: str
    source_report_id: str
    channel_id: Int64
    creator_id: int
    source: SaleSource


class SaleRow(Owned):
    """One stored sale row (the module's docstring says what each field holds)."""

    row: int | None
    user_id: Int64 | None
    customer_key: str | None
    name: str | None
    product: str | None
    username: str | None
    photo_url: str | None
    phone_number: str | None
    invite_link: str | None
    is_premium: bool
    birthdate: datetime | None
    status: SaleStatus | None
    purchase_amount: Decimal128 | None
    currency: str
    sub_date: datetime | None
    unsub_date: datetime | None
    action_date: datetime | None
    action_period_ms: Int64 | None
    extra: dict[str, Any] | None


SALE_ROW_KEYS: Final = frozenset(SaleRow.__required_keys__)

# Fields the public sales listing may be ordered by (whitelist: nothing else reaches MongoDB).
ORDERABLE_FIELDS: Final = (
    "user_id",
    "name",
    "product",
    "purchase_amount",
    "username",
    "is_premium",
    "status",
    "sub_date",
    "unsub_date",
    "action_date",
    "action_period",
    "row",
)
