"""SweetClub payload models (seed: sweetclub-api.txt), as the document prints them and as a real
platform may send them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from services.connectors.platforms.base.quirks import EMPTY_IS_NONE, ApiModel, LooseDatetime, LooseInt, Money, Text


class LoginAnswer(ApiModel):
    api_token: str | None = None
    error: Any = None


class SaleListItem(ApiModel):
    sale_id: Text
    name: Text | None = None
    commission_percent: Money | None = None
    commission_total: Money | None = None
    total: Money
    currency_code: Text | None = None
    # "0000-00-00 00:00:00" reads as None: the sale is still counted, without a date.
    date_added: LooseDatetime = None
    # "1" active, "0" refunded; documented as [1, 0], printed as strings.
    status: Text


class Delivery(ApiModel):
    address: Text | None = None
    delivery_date: Text | None = None
    sale_id: Text | None = None
    type: Text | None = None
    type_id: Text | None = None
    date_added: Text | None = None
    date_modified: Text | None = None


class Product(ApiModel):
    id: Text
    name: Text | None = None
    licensor: Text | None = None
    licensor_id: Text | None = None
    brand: Text | None = None
    brand_id: Text | None = None
    unit: Text | None = None
    unit_id: Text | None = None
    type: Text | None = None
    type_id: Text | None = None
    quantity: Text | None = None  # "1.0000 шт": a number with its unit, kept as text
    production_date: Text | None = None
    price: Money | None = None
    total: Money | None = None


class SaleInfoDetail(ApiModel):
    id: Text
    internal_order: Text | None = None
    client_id: Text | None = None
    delivery_id: Text | None = None
    comment: Text | None = None
    commission_percent: Money | None = None
    commission_total: Money | None = None
    currency_code: Text | None = None
    name: Text | None = None
    total: Money | None = None
    status: Text | None = None
    sale_channel: Text | None = None
    sale_channel_id: Text | None = None
    production_date: Text | None = None
    date_added: LooseDatetime = None
    date_modified: LooseDatetime = None
    products: Annotated[list[Product] | None, EMPTY_IS_NONE] = None


class SaleInfo(ApiModel):
    # Documented as an object; PHP prints a sale without delivery as `[]`.
    delivery: Annotated[Delivery | None, EMPTY_IS_NONE] = None
    sale_info: SaleInfoDetail


class Brand(ApiModel):
    brand_id: Text
    brand_name: Text | None = None


class Unit(ApiModel):
    title: Text | None = None
    value: Text


class ProductType(ApiModel):
    title: Text | None = None
    value: Text
    units: list[Unit] = Field(default_factory=list)


class SaleChannel(ApiModel):
    sale_channel_id: Text
    name: Text | None = None


class BrandInfo(ApiModel):
    brand_id: Text
    brand_name: Text | None = None
    licensor_name: Text | None = None
    licensor_id: Text | None = None
    sale_channels: list[SaleChannel] = Field(default_factory=list)
    product_type: list[ProductType] = Field(default_factory=list)


class RefundReason(ApiModel):
    return_reason_id: Text
    name: Text | None = None


class RefundReasons(ApiModel):
    return_reasons: list[RefundReason] = Field(default_factory=list)


class SaleAddAnswer(ApiModel):
    sales_id: list[LooseInt] = Field(default_factory=list)
    success: Text | None = None
    # `[]` on success in the document; an object or a text when the sale was refused.
    error: Any = None


class RefundAddAnswer(ApiModel):
    success: Text | None = None
    error: Any = None


SALE_LIST = TypeAdapter(list[SaleListItem])
BRAND_LIST = TypeAdapter(list[Brand])
BRAND_INFO = TypeAdapter(list[BrandInfo])


class SaleAddForm(ApiModel):
    """Form of `api/sale/add`, every documented field (all sent as text, as curl does)."""

    brand_id: Text
    product_type: Text
    product_quantity: Text
    product_unit: Text
    product_price: Text
    sale_channel_id: Text
    production_date: Text | None = None
    delivery_date: Text | None = None
    product_in_unit: Text | None = None
    not_production_date: Text | None = None
    internal_order: Text | None = None
    comment: Text | None = None
    delivery_type_id: Text | None = None
    delivery_address: Text | None = None
    delivery_at: Text | None = None

    def form(self) -> dict[str, str]:
        return {k: str(v) for k, v in self.model_dump(exclude_none=True).items()}


def has_error(error: Any) -> bool:
    return bool(error) and error != [] and error != {}


def error_text(error: Any) -> str:
    if isinstance(error, dict):
        return "; ".join(f"{k}: {v}" for k, v in error.items())
    if isinstance(error, list):
        return "; ".join(str(e) for e in error)
    return str(error)
