"""Domain: the public `sale recorded` event → stored sale rows (shared/sale_rows.py shape)."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import Decimal128, Int64

from shared.contracts import RecordedSale, SaleRecorded
from shared.mongo import Document


def event_source_report_id(report_id: str, source: str) -> str:
    """One source report per (report, publishing system), so each system's sales are listed apart."""
    return f"event:{report_id}:{source}"


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def row_for(event: SaleRecorded, sale: RecordedSale, creator_id: int, report_currency: str) -> Document:
    """`report_currency` is the currency of a sale that names none of its own."""
    source_report_id = event_source_report_id(event.report_id, event.source)
    sub_date = _utc(sale.sub_date)
    action_date = _utc(sale.action_date)
    period = None
    if sub_date is not None and action_date is not None:
        period = Int64(int((action_date - sub_date).total_seconds() * 1000))
    return {
        "_id": f"{source_report_id}:{sale.external_id}",
        "report_id": event.report_id,
        "source_report_id": source_report_id,
        "channel_id": Int64(event.channel_id),
        "creator_id": creator_id,
        "source": "event",
        "row": None,
        "user_id": None if sale.user_id is None else Int64(sale.user_id),
        "customer_key": None if sale.user_id is not None else f"{event.source}:{sale.external_id}",
        "name": sale.name,
        "product": sale.product,
        "username": sale.username.lstrip("@") if sale.username else None,
        "photo_url": None,
        "phone_number": None,
        "invite_link": sale.invite_link,
        "is_premium": sale.is_premium,
        "birthdate": None,
        "status": sale.status,
        "purchase_amount": None if sale.purchase_amount is None else Decimal128(sale.purchase_amount),
        "currency": sale.currency or report_currency,
        "sub_date": sub_date,
        "unsub_date": None,
        "action_date": action_date,
        "action_period_ms": period,
        "extra": None,
    }
