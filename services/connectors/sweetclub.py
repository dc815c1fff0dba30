"""SweetClub API client (seed: sweetclub-api.txt), every documented method.

Auth: `POST api/login` with a form (username, password) answers `{"api_token": ...}`; a bad
login answers `{"error": "..."}` (HTTP 200 in the document). The session lives 24 h and is
renewed by use, so the client logs in lazily, reuses the token, and logs in again once when a
call is refused with 401 (expired or dropped session).
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from typing import Any, Literal

import httpx
from pydantic import Field, TypeAdapter

from services.connectors.http import ApiError, ApiTransport, AuthError, HttpConfig, Page
from services.connectors.quirks import ApiModel, LooseInt, Money, Text, parse

API = "sweetclub"
MAX_LIMIT = 1000
SortField = Literal["s.id", "s.total", ".s.commission_total", "s.commission_total", "s.date_added"]


# --------------------------------------------------------------------------- payloads


class LoginAnswer(ApiModel):
    api_token: str | None = None
    error: Any = None


class SaleListItem(ApiModel):
    sale_id: Text
    name: Text | None = None
    commission_percent: Money | None = None
    commission_total: Money | None = None
    total: Money
    currency_code: str | None = None
    date_added: datetime
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
    currency_code: str | None = None
    name: Text | None = None
    total: Money
    status: Text
    sale_channel: Text | None = None
    sale_channel_id: Text | None = None
    production_date: Text | None = None
    date_added: datetime | None = None
    date_modified: datetime | None = None
    products: list[Product] = Field(default_factory=list)


class SaleInfo(ApiModel):
    delivery: Delivery | None = None
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


def _has_error(error: Any) -> bool:
    return bool(error) and error != [] and error != {}


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        return "; ".join(f"{k}: {v}" for k, v in error.items())
    if isinstance(error, list):
        return "; ".join(str(e) for e in error)
    return str(error)


# --------------------------------------------------------------------------- client


class SweetClubClient:
    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        config: HttpConfig | None = None,
        *,
        transport: ApiTransport | None = None,
    ) -> None:
        self._http = transport or ApiTransport(API, base_url, config)
        self._username = username
        self._password = password
        self._token: str | None = None
        self._login_lock = asyncio.Lock()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> SweetClubClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- auth

    async def login(self) -> str:
        response = await self._http.request(
            "POST", "api/login", data={"username": self._username, "password": self._password}
        )
        answer = LoginAnswer.model_validate(_json(response))
        if answer.api_token and response.status_code < 400:
            self._token = answer.api_token
            return answer.api_token
        message = _error_text(answer.error) if answer.error else f"login refused (HTTP {response.status_code})"
        raise AuthError(API, f"login refused: {message}", status=response.status_code, payload=answer.error)

    async def _token_for_use(self, stale: str | None) -> str:
        # Several concurrent calls may see the same 401; only one of them logs in again.
        async with self._login_lock:
            if self._token is None or self._token == stale:
                await self.login()
            assert self._token is not None
            return self._token

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        token = self._token or await self._token_for_use(None)
        for attempt in range(2):
            response = await self._http.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
            if response.status_code != 401:
                return response
            if attempt == 0:
                token = await self._token_for_use(token)
        raise AuthError(API, "the API refused a fresh session token", status=401)

    async def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = await self._call("GET", path, params=params)
        body = _json(response)
        if response.status_code >= 400 or (
            isinstance(body, dict) and _has_error(body.get("error")) and not _looks_like_payload(body)
        ):
            err = body.get("error") if isinstance(body, dict) else body
            raise ApiError(API, f"{path}: {_error_text(err)}", status=response.status_code, payload=err)
        return body

    # -- sales

    async def sale_list(
        self,
        *,
        sale_status: Literal["0", "1", "all"] | None = "all",
        sort: SortField | None = "s.id",
        order: Literal["ASC", "DESC"] | None = "ASC",
        limit: int | None = MAX_LIMIT,
        page: int | None = 1,
        date_start: date | None = None,
        date_end: date | None = None,
    ) -> list[SaleListItem]:
        if limit is not None and not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1..{MAX_LIMIT}")
        params: dict[str, Any] = {
            "sale_status": sale_status,
            "sort": sort,
            "order": order,
            "limit": limit,
            "page": page,
            "date_start": date_start.isoformat() if date_start else None,
            "date_end": date_end.isoformat() if date_end else None,
        }
        body = await self._get_json("api/sale/list", {k: v for k, v in params.items() if v is not None})
        return parse(API, "api/sale/list", SALE_LIST.validate_python, body)

    async def sale_list_page(
        self, page: int, *, date_start: date | None, date_end: date | None, limit: int = MAX_LIMIT
    ) -> Page[SaleListItem]:
        """A page of every sale (active and refunded) in id order; a short page is the last.
        Ids only grow, so a sale created while we page lands after what we have read: no gap."""
        items = await self.sale_list(
            sale_status="all",
            sort="s.id",
            order="ASC",
            limit=limit,
            page=page,
            date_start=date_start,
            date_end=date_end,
        )
        return Page(items, page + 1 if len(items) >= limit else None)

    async def sale_info(self, sale_id: str) -> SaleInfo:
        body = await self._get_json("api/sale/info", {"sale_id": sale_id})
        return parse(API, "api/sale/info", SaleInfo.model_validate, body)

    async def sale_add(self, form: SaleAddForm) -> SaleAddAnswer:
        """Creates a sale. The API's refusal is an answer, not an exception: the caller shows it."""
        response = await self._call("POST", "api/sale/add", files=_multipart(form.form()))
        if response.status_code >= 400 and response.status_code != 422:
            raise ApiError(API, "api/sale/add failed", status=response.status_code, payload=_json(response))
        return parse(API, "api/sale/add", SaleAddAnswer.model_validate, _json(response))

    async def refund_add(self, sale_id: str, return_reason_id: str, comment: str | None = None) -> RefundAddAnswer:
        form = {"sale_id": sale_id, "return_reason_id": return_reason_id}
        if comment:
            form["comment"] = comment
        response = await self._call("POST", "api/refund/add", files=_multipart(form))
        if response.status_code >= 400 and response.status_code != 422:
            raise ApiError(API, "api/refund/add failed", status=response.status_code, payload=_json(response))
        return parse(API, "api/refund/add", RefundAddAnswer.model_validate, _json(response))

    # -- reference data

    async def brand_list(self) -> list[Brand]:
        return parse(API, "api/brand/list", BRAND_LIST.validate_python, await self._get_json("api/brand/list"))

    async def brand_info(self, brand_id: str) -> list[BrandInfo]:
        body = await self._get_json("api/brand/info", {"brand_id": brand_id})
        # The document prints a one-element array; tolerate a bare object too.
        return parse(API, "api/brand/info", BRAND_INFO.validate_python, body if isinstance(body, list) else [body])

    async def refund_reasons(self) -> RefundReasons:
        return parse(
            API, "api/refund/reasons", RefundReasons.model_validate, await self._get_json("api/refund/reasons")
        )


def _multipart(form: dict[str, str]) -> dict[str, tuple[None, str]]:
    # The document's curl examples send --form, i.e. multipart/form-data.
    return {k: (None, v) for k, v in form.items()}


def _looks_like_payload(body: dict[str, Any]) -> bool:
    return "sale_info" in body or "return_reasons" in body


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(API, "answer is not JSON", status=response.status_code) from exc
