"""SweetClub sales → stored rows. Pure.

Status "1" → `sale`, "0" → `refunded` (kept, excluded from counts); `total` → amount in
`currency_code`; the buyer is `client_id` when a detail call says SweetClub knows it, else the sale
itself. Naive times are read in the connection's time zone (Moscow by default) and stored in UTC.
"""

from __future__ import annotations

from typing import Any

from services.connectors.platforms.base.rows import Row, RowContext, base_row, currency_of, money, text, to_utc
from services.connectors.platforms.sweetclub.models import SaleInfo, SaleListItem

SOURCE = "sweetclub"


def status_of(status: str | None) -> str:
    return "sale" if (status or "").strip() == "1" else "refunded"


def listing_row(ctx: RowContext, item: SaleListItem) -> Row:
    """Everything the listing says: enough to count the sale and its amount at once."""
    if item.total is None:
        raise ValueError("the sale has no total")
    row = base_row(ctx, SOURCE, item.sale_id)
    currency, warning = currency_of(item.currency_code, ctx.currency)
    row.update(
        status=status_of(item.status),
        purchase_amount=money(item.total),
        currency=currency,
        product=item.name,
        customer_key=f"sweetclub:sale:{item.sale_id}",
        action_date=to_utc(item.date_added, ctx.zone()),
    )
    extra: dict[str, Any] = row["extra"]
    extra.update(
        platform_status=item.status,
        currency_code=item.currency_code,
        commission_percent=text(item.commission_percent),
        commission_total=text(item.commission_total),
    )
    warnings = [w for w in (warning, None if item.date_added else "no readable date_added") if w]
    if warnings:
        extra["warnings"] = warnings
    return row


def detail_fields(info: SaleInfo) -> dict[str, Any]:
    """What `sale/info` adds to a stored row (paths relative to the row)."""
    detail = info.sale_info
    fields: dict[str, Any] = {
        "extra.sale_info": detail.model_dump(mode="json", exclude={"products"}),
        "extra.products": [p.model_dump(mode="json") for p in detail.products or []],
        "extra.delivery": info.delivery.model_dump(mode="json") if info.delivery else None,
    }
    client = (detail.client_id or "0").strip()
    if client not in ("", "0"):
        fields["customer_key"] = f"sweetclub:client:{client}"
    return fields
