"""Eduzz Órbita payload models (seed: eduzz-orbita-sales.md). Every field optional but the id:
the document's types are read leniently (numbers as text, `[]` for an absent object)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from services.connectors.platforms.base.quirks import EMPTY_IS_NONE, ApiModel, LooseDatetime, LooseInt, Money, Text


class Client(ApiModel):
    id: LooseInt | None = None
    name: Text | None = None
    email: Text | None = None
    document: Text | None = None
    cellphone: Text | None = None


class Named(ApiModel):
    name: Text | None = None


class Contract(ApiModel):
    id: LooseInt | None = None
    start_date: LooseDatetime = None
    frequency: LooseInt | None = None
    frequency_type: Text | None = None
    installments: LooseInt | None = None
    total_invoices_paid: LooseInt | None = None
    total_invoices_to_pay: LooseInt | None = None
    total_invoices_charged: LooseInt | None = None
    total_value: Money | None = None


class MainContent(ApiModel):
    id: LooseInt | None = None
    name: Text | None = None
    sku: Text | None = None


class Item(ApiModel):
    description: Text | None = None
    type: Text | None = None
    sku: Text | None = None
    is_bump: bool | None = None
    quantity: Money | None = None
    value: Money | None = None
    coupon_key: Text | None = None
    discount: Money | None = None
    gross_gain: Money | None = None
    net_gain: Money | None = None
    partner_gain: Money | None = None
    total_value: Money | None = None
    total_interest_value: Money | None = None
    fee_value: Money | None = None
    anticipation_value: Money | None = None
    others_fees_values: Money | None = None


class Sale(ApiModel):
    id: LooseInt
    created_at: LooseDatetime = None
    paid_at: LooseDatetime = None
    discount_amount: Money | None = None
    is_recover: bool | None = None
    is_infinite_funnel: bool | None = None
    gross_gain: Money | None = None
    net_gain: Money | None = None
    affiliate_gain: Money | None = None
    fee_value: Money | None = None
    others_fees_values: Money | None = None
    total_value: Money | None = None
    total_interest_value: Money | None = None
    refund_value: Money | None = None
    payment_method: Text | None = None
    client: Annotated[Client | None, EMPTY_IS_NONE] = None
    producer: Annotated[Named | None, EMPTY_IS_NONE] = None
    affiliate: Annotated[Named | None, EMPTY_IS_NONE] = None
    contract: Annotated[Contract | None, EMPTY_IS_NONE] = None
    main_content: Annotated[MainContent | None, EMPTY_IS_NONE] = None
    status: Annotated[Named | None, EMPTY_IS_NONE] = None
    utm_source: Text | None = None
    utm_campaign: Text | None = None
    utm_medium: Text | None = None
    utm_content: Text | None = None
    tracker: Text | None = None
    tracker2: Text | None = None
    tracker3: Text | None = None


class SaleWithItems(Sale):
    items: Annotated[list[Item] | None, EMPTY_IS_NONE] = None


class SalesPage(ApiModel):
    pages: LooseInt
    items_per_page: LooseInt | None = None
    page: LooseInt
    total_items: LooseInt | None = None
    # Read one by one by the puller: one unreadable sale must not make the page unreadable.
    items: list[Any] = Field(default_factory=list)
