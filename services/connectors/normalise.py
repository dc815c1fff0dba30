"""External sales → stored sale rows (shared/sale_rows.py), SPEC §5. Pure: no I/O.

- SweetClub: status "1" → `sale`, "0" → `refunded` (kept, excluded from counts); `total` →
  amount; the buyer is `client_id` when SweetClub knows it, else the sale itself.
- Eduzz: paid → `sale` (amount = `total_value`), open / waiting_payment → `lead`, everything else
  (refunded, canceled, expired...) → `refunded`, i.e. kept but excluded; a Telegram invite link
  found in the UTM / tracker fields becomes `invite_link`, attributing the sale to the channel.
- Yandex OFD: one `revenue` row per day, amount = income.total − income_return.total (the totals
  are authoritative, not the payment-kind parts), no user.

Naive platform times (SweetClub) are read in the connection's time zone and stored in UTC.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bson import Decimal128, Int64

from services.connectors import eduzz, ofd, sweetclub
from shared.credentials import Kind

Row = dict[str, Any]
KINDS: tuple[Kind, ...] = ("sweetclub", "eduzz", "ofd")
# Naive times of the Russian platforms are Moscow time unless the connection says otherwise.
DEFAULT_TIMEZONE: dict[Kind, str] = {"sweetclub": "Europe/Moscow", "eduzz": "UTC", "ofd": "Europe/Moscow"}

_INVITE = re.compile(r"(?:https?://)?(?:t\.me|telegram\.me)/(?:\+|joinchat/)[A-Za-z0-9_-]+", re.IGNORECASE)
_EDUZZ_LEADS = frozenset({"open", "waiting_payment", "aberta", "aguardando pagamento"})
_EDUZZ_PAID = frozenset({"paid", "paga", "pago"})


@dataclass(frozen=True)
class RowContext:
    report_id: str
    source_report_id: str
    channel_id: int
    creator_id: int
    connection_id: str
    timezone: str = "UTC"

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


def _money(value: Decimal | None) -> Decimal128 | None:
    return None if value is None else Decimal128(value)


def _phone(value: str | None) -> str | None:
    digits = re.sub(r"\D", "", value or "")
    return f"+{digits}" if digits else None


def _base(ctx: RowContext, source: Kind, external_id: str) -> Row:
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
        "sub_date": None,
        "unsub_date": None,
        "action_date": None,
        "action_period_ms": None,
        "extra": {"connection_id": ctx.connection_id, "external_id": external_id},
    }


# --------------------------------------------------------------------------- SweetClub


def sweetclub_status(status: str) -> str:
    return "sale" if status.strip() == "1" else "refunded"


def sweetclub_row(ctx: RowContext, item: sweetclub.SaleListItem, info: sweetclub.SaleInfo | None = None) -> Row:
    row = _base(ctx, "sweetclub", item.sale_id)
    detail = info.sale_info if info is not None else None
    status = detail.status if detail is not None else item.status
    client = (detail.client_id or "0") if detail is not None else "0"
    row.update(
        status=sweetclub_status(status),
        purchase_amount=_money(detail.total if detail is not None else item.total),
        product=item.name,
        customer_key=f"sweetclub:client:{client}" if client not in ("", "0") else f"sweetclub:sale:{item.sale_id}",
        action_date=to_utc(item.date_added, ctx.zone()),
    )
    extra: dict[str, Any] = row["extra"]
    extra.update(
        platform_status=status,
        currency_code=item.currency_code,
        commission_percent=_text(item.commission_percent),
        commission_total=_text(item.commission_total),
    )
    if info is not None:
        extra["sale_info"] = info.sale_info.model_dump(mode="json", exclude={"products"})
        extra["products"] = [p.model_dump(mode="json") for p in info.sale_info.products]
        extra["delivery"] = info.delivery.model_dump(mode="json") if info.delivery else None
    return row


# --------------------------------------------------------------------------- Eduzz


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(c)).strip()


def eduzz_status(name: str | None) -> str:
    folded = _fold(name or "")
    if folded in _EDUZZ_PAID:
        return "sale"
    if folded in {_fold(s) for s in _EDUZZ_LEADS}:
        return "lead"
    return "refunded"


def invite_link(*fields: str | None) -> str | None:
    for value in fields:
        match = _INVITE.search(value or "")
        if match:
            link = match.group(0)
            return link if link.lower().startswith("http") else f"https://{link}"
    return None


def eduzz_row(ctx: RowContext, sale: eduzz.Sale, detail: eduzz.SaleWithItems | None = None) -> Row:
    external_id = str(sale.id)
    row = _base(ctx, "eduzz", external_id)
    status_name = sale.status.name if sale.status else None
    status = eduzz_status(status_name)
    client = sale.client
    customer = None
    if client is not None:
        customer = (
            f"eduzz:client:{client.id}"
            if client.id is not None
            else (f"eduzz:email:{client.email.lower()}" if client.email else None)
        )
    row.update(
        status=status,
        purchase_amount=_money(sale.total_value),
        product=sale.main_content.name if sale.main_content else None,
        name=client.name if client else None,
        phone_number=_phone(client.cellphone) if client else None,
        customer_key=customer or f"eduzz:sale:{external_id}",
        invite_link=invite_link(
            sale.utm_source,
            sale.utm_campaign,
            sale.utm_medium,
            sale.utm_content,
            sale.tracker,
            sale.tracker2,
            sale.tracker3,
        ),
        action_date=to_utc(sale.paid_at if status == "sale" and sale.paid_at else sale.created_at, ctx.zone()),
    )
    kept = sale.model_dump(mode="json", exclude={"client"})
    kept["platform_status"] = status_name
    kept["client"] = client.model_dump(mode="json") if client else None
    if detail is not None:
        kept["items"] = [i.model_dump(mode="json") for i in detail.items]
    row["extra"].update(kept)
    row["extra"].pop("id", None)
    return row


# --------------------------------------------------------------------------- Yandex OFD


def ofd_day(interval: ofd.IntervalRow) -> date:
    for value in (interval.start, interval.date_from):
        if value:
            return date.fromisoformat(value[:10])
    raise ValueError("an OFD interval without start or date_from")


def ofd_revenue(interval: ofd.IntervalRow) -> Decimal:
    income = interval.income.total if interval.income and interval.income.total is not None else Decimal(0)
    returned = (
        interval.income_return.total
        if interval.income_return and interval.income_return.total is not None
        else Decimal(0)
    )
    return income - returned


def ofd_row(ctx: RowContext, interval: ofd.IntervalRow) -> Row:
    day = ofd_day(interval)
    row = _base(ctx, "ofd", f"day:{day.isoformat()}")
    row.update(
        status="revenue",
        purchase_amount=_money(ofd_revenue(interval)),
        product="receipts",
        action_date=datetime.combine(day, datetime.min.time(), ctx.zone()).astimezone(UTC),
    )
    row["extra"].update(
        day=day.isoformat(),
        checks=interval.checks,
        checks_income=interval.checks_income,
        income_avg=_text(interval.income_avg),
        totals=interval.model_dump(mode="json", exclude={"start", "end"}),
    )
    return row


def _text(value: Decimal | None) -> str | None:
    return None if value is None else format(value, "f")
