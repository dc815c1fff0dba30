"""Eduzz Órbita sales API client (seed: eduzz-orbita-sales.md): list and one sale with items.

Auth is a static bearer token: a 401 means the token is wrong or expired, which no retry can
fix, so it surfaces as AuthError with a message saying so.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import httpx
from pydantic import Field

from services.connectors.http import ApiError, ApiTransport, AuthError, HttpConfig, Page
from services.connectors.quirks import ApiModel, LooseInt, Money, Text, parse

API = "eduzz"
MAX_PER_PAGE = 25
DateType = Literal["creation", "payment"]
# The document lists the statuses by name while typing the parameter "integer"; both are sent as given.
SaleStatusName = Literal[
    "open",
    "paid",
    "canceled",
    "waiting_refund",
    "refunded",
    "duplicated",
    "expired",
    "recovering",
    "waiting_payment",
    "negociated",
]


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
    start_date: datetime | None = None
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
    created_at: datetime | None = None
    paid_at: datetime | None = None
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
    client: Client | None = None
    producer: Named | None = None
    affiliate: Named | None = None
    contract: Contract | None = None
    main_content: MainContent | None = None
    status: Named | None = None
    utm_source: Text | None = None
    utm_campaign: Text | None = None
    utm_medium: Text | None = None
    utm_content: Text | None = None
    tracker: Text | None = None
    tracker2: Text | None = None
    tracker3: Text | None = None


class SaleWithItems(Sale):
    items: list[Item] = Field(default_factory=list)


class SalesPage(ApiModel):
    pages: LooseInt
    items_per_page: LooseInt | None = None
    page: LooseInt
    total_items: LooseInt | None = None
    items: list[Sale] = Field(default_factory=list)


class EduzzClient:
    def __init__(
        self, base_url: str, token: str, config: HttpConfig | None = None, *, transport: ApiTransport | None = None
    ) -> None:
        self._http = transport or ApiTransport(API, base_url, config)
        self._auth = {"Authorization": f"Bearer {token}"}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> EduzzClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def _get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = await self._http.request("GET", path, params=params, headers=self._auth)
        body = _json(response)
        if response.status_code == 401:
            raise AuthError(API, "bearer token refused (wrong or expired token)", status=401, payload=body)
        if response.status_code >= 400:
            raise ApiError(API, f"{path}: {_message(body)}", status=response.status_code, payload=body)
        return body

    async def list_sales(
        self,
        start_date: date,
        end_date: date,
        *,
        date_type: DateType | None = None,
        status: SaleStatusName | int | None = None,
        page: int | None = None,
        per_page: int | None = MAX_PER_PAGE,
    ) -> SalesPage:
        if per_page is not None and not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}")
        params: dict[str, Any] = {"start_date": start_date.isoformat(), "end_date": end_date.isoformat()}
        for key, value in (("date_type", date_type), ("status", status), ("page", page), ("per_page", per_page)):
            if value is not None:
                params[key] = value
        return parse(API, "sales", SalesPage.model_validate, await self._get("orbita/v1/sales", params))

    async def sales_page(
        self, page: int, *, start_date: date, end_date: date, date_type: DateType = "creation"
    ) -> Page[Sale]:
        """Pages run to `pages` (the answer's page count), never beyond."""
        answer = await self.list_sales(start_date, end_date, date_type=date_type, page=page, per_page=MAX_PER_PAGE)
        return Page(answer.items, page + 1 if page < answer.pages and answer.items else None)

    async def get_sale(self, sale_id: int | str) -> SaleWithItems:
        return parse(API, "sale", SaleWithItems.model_validate, await self._get(f"orbita/v1/sales/{sale_id}"))


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(API, "answer is not JSON", status=response.status_code) from exc


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if body.get(key):
                return str(body[key])
    return str(body)[:200]
