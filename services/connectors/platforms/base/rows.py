"""What every platform's row mapping shares (the stored shape is `shared/sale_rows.py`). Pure."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bson import Decimal128, Int64

from shared.currency import CurrencyInvalid, normalise_currency

Row = dict[str, Any]

_INVITE = re.compile(r"(?:https?://)?(?:t\.me|telegram\.me)/(?:\+|joinchat/)[A-Za-z0-9_-]+", re.IGNORECASE)


@dataclass(frozen=True)
class RowContext:
    report_id: str
    source_report_id: str
    channel_id: int
    creator_id: int
    connection_id: str
    timezone: str = "UTC"
    # The currency of the platform's amounts when a row does not say its own.
    currency: str = "RUB"

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


def row_id(source_report_id: str, external_id: str) -> str:
    return f"{source_report_id}:{external_id}"


def to_utc(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=zone)
    return value.astimezone(UTC)


def money(value: Decimal | None) -> Decimal128 | None:
    return None if value is None else Decimal128(value)


def text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")


def phone(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    return f"+{digits}" if digits else None


def currency_of(code: str | None, fallback: str) -> tuple[str, str | None]:
    """An ISO code for a platform's currency field, and a warning when it could not be read (the
    row is kept, in `fallback`: one unreadable code must not hide a sale)."""
    if code is None or not str(code).strip():
        return fallback, None
    try:
        return normalise_currency(str(code)), None
    except CurrencyInvalid:
        return fallback, f"unreadable currency {str(code)[:20]!r}; read as {fallback}"


def invite_link(*fields: str | None) -> str | None:
    for value in fields:
        match = _INVITE.search(value or "")
        if match:
            link = match.group(0)
            return link if link.lower().startswith("http") else f"https://{link}"
    return None


def base_row(ctx: RowContext, source: str, external_id: str) -> Row:
    return {
        "_id": row_id(ctx.source_report_id, external_id),
        "report_id": ctx.report_id,
        "source_report_id": ctx.source_report_id,
        "channel_id": Int64(ctx.channel_id),
        "creator_id": ctx.creator_id,
        "source": source,
        "row": None,
        "user_id": None,
        "customer_key": None,
        "name": None,
        "product": None,
        "username": None,
        "photo_url": None,
        "phone_number": None,
        "invite_link": None,
        "is_premium": False,
        "birthdate": None,
        "status": None,
        "purchase_amount": None,
        "currency": ctx.currency,
        "sub_date": None,
        "unsub_date": None,
        "action_date": None,
        "action_period_ms": None,
        "extra": {"connection_id": ctx.connection_id, "external_id": external_id},
    }
