"""Eduzz sales → stored rows. Pure.

Classified by `status.name` (the only status the document describes): paid → `sale` (amount =
`total_value`), open / waiting_payment → `lead`, everything else (refunded, canceled, expired...) →
`refunded`, i.e. kept but excluded. A Telegram invite link found in the UTM / tracker fields
becomes `invite_link`. Amounts are BRL unless the connection's `currency` option says otherwise.
"""

from __future__ import annotations

import unicodedata
from typing import Any

from services.connectors.platforms.base.rows import Row, RowContext, base_row, invite_link, money, phone, to_utc
from services.connectors.platforms.eduzz.models import Sale, SaleWithItems

SOURCE = "eduzz"
_LEADS = ("open", "waiting_payment", "aberta", "aguardando pagamento", "em aberto")
_PAID = ("paid", "paga", "pago")


def _fold(value: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", value.lower()) if not unicodedata.combining(c)).strip()


LEADS = frozenset(_fold(s) for s in _LEADS)
PAID = frozenset(_fold(s) for s in _PAID)


def status_of(name: str | None) -> str:
    folded = _fold(name or "")
    if folded in PAID:
        return "sale"
    if folded in LEADS:
        return "lead"
    return "refunded"


def listing_row(ctx: RowContext, sale: Sale) -> Row:
    external_id = str(sale.id)
    row = base_row(ctx, SOURCE, external_id)
    status_name = sale.status.name if sale.status else None
    status = status_of(status_name)
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
        purchase_amount=money(sale.total_value),
        product=sale.main_content.name if sale.main_content else None,
        name=client.name if client else None,
        phone_number=phone(client.cellphone) if client else None,
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
    row["extra"].update(kept)
    row["extra"].pop("id", None)
    return row


def detail_fields(detail: SaleWithItems) -> dict[str, Any]:
    return {"extra.items": [i.model_dump(mode="json") for i in detail.items or []]}
