"""Yandex OFD sales report client (seed: yandex-ofd-sales-report.txt).

`POST /v1/docs/aggregations/sales` with the two key headers; `limit`/`offset` page over the
aggregation intervals and `total` is the number of intervals in the period. The document says
elements may be missing and undocumented service fields may appear, so every field is optional
and extras are kept.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

import httpx
from pydantic import BaseModel, Field

from services.connectors.http import ApiError, ApiTransport, AuthError, HttpConfig, Page
from services.connectors.quirks import ApiModel, LooseInt, Money, Text, parse

API = "ofd"
DEFAULT_DOCUMENT_TYPES = ("receipt", "receiptCorrection", "bso", "bsoCorrection")
DocumentType = Literal[
    "fiscalReport",
    "fiscalReportCorrection",
    "openShift",
    "closeShift",
    "receipt",
    "receiptCorrection",
    "bso",
    "bsoCorrection",
    "currentStateReport",
    "closeArchive",
]
OperationType = Literal["income", "income_return", "outcome", "outcome_return"]
TaxationType = Literal["osn", "usn_income", "usn_income_wo_expenditure", "esn_agricultural", "psn"]
Interval = Literal["day", "week", "month"]
ORDER_KEYS = frozenset(
    {
        "date",
        "income",
        "income_return",
        "cash",
        "ecash",
        "checks",
        "checks_income",
        "avg_receipt",
        "outcome",
        "outcome_return",
    }
)


class Amounts(ApiModel):
    prepaid: Money | None = None
    cashTotal: Money | None = None  # noqa: N815 - the API's name
    credit: Money | None = None
    ecashTotal: Money | None = None  # noqa: N815 - the API's name
    provision: Money | None = None
    # Authoritative: the payment-kind parts may not add up to it (see the seed's example: 630 vs 631).
    total: Money | None = None


class Totals(ApiModel):
    income: Amounts | None = None
    income_return: Amounts | None = None
    outcome: Amounts | None = None
    outcome_return: Amounts | None = None
    checks: LooseInt | None = None
    checks_income: LooseInt | None = None
    income_avg: Money | None = None
    date_from: Text | None = None
    date_to: Text | None = None


class IntervalRow(Totals):
    start: Text | None = None
    end: Text | None = None


class SalesReport(ApiModel):
    data: list[IntervalRow] = Field(default_factory=list)
    full: Totals | None = None
    total: LooseInt | None = None


class SalesQuery(BaseModel):
    """The request body, every documented filter."""

    date_from: str
    date_to: str
    limit: int | None = None
    offset: int | None = None
    company_ids: list[str] | None = None
    retail_point_ids: list[str] | None = None
    cashbox_ids: list[str] | None = None
    document_types: list[DocumentType] | None = None
    operation_types: list[OperationType] | None = None
    taxation_types: list[TaxationType] | None = None
    interval: Interval | None = None
    orders: list[str] | None = None

    def body(self) -> dict[str, Any]:
        for order in self.orders or ():
            if order.lstrip("-") not in ORDER_KEYS:
                raise ValueError(f"unknown order {order!r}")
        return self.model_dump(exclude_none=True)


def period_bound(value: date | datetime) -> str:
    """`YYYY-MM-DD` or `YYYY-MM-DD hh:mm:ss` (the API fills the time as start/end of day)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


class OfdClient:
    def __init__(
        self,
        base_url: str,
        yandex_key: str,
        ofd_key: str,
        config: HttpConfig | None = None,
        *,
        transport: ApiTransport | None = None,
    ) -> None:
        self._http = transport or ApiTransport(API, base_url, config)
        self._headers = {"X-Yandex-Key": yandex_key, "X-OFD-Key": ofd_key, "Content-Type": "application/json"}

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> OfdClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def sales_report(self, query: SalesQuery) -> SalesReport:
        response = await self._http.request(
            "POST", "v1/docs/aggregations/sales", json=query.body(), headers=self._headers
        )
        body = _json(response)
        if response.status_code in (401, 403):
            raise AuthError(API, f"keys refused: {_message(body)}", status=response.status_code, payload=body)
        if response.status_code >= 400:
            raise ApiError(API, f"sales report: {_message(body)}", status=response.status_code, payload=body)
        return parse(API, "sales report", SalesReport.model_validate, body)

    async def day_page(
        self,
        offset: int,
        *,
        date_from: date | datetime,
        date_to: date | datetime,
        limit: int = 100,
        company_ids: list[str] | None = None,
        document_types: list[DocumentType] | None = None,
    ) -> Page[IntervalRow]:
        """Days in date order from `offset`; `Page.next_page` is the next offset (the end: `total`)."""
        query = SalesQuery(
            date_from=period_bound(date_from),
            date_to=period_bound(date_to),
            limit=limit,
            offset=offset,
            company_ids=company_ids,
            document_types=document_types or list(DEFAULT_DOCUMENT_TYPES),
            interval="day",
            orders=["date"],
        )
        report = await self.sales_report(query)
        following = offset + len(report.data)
        more = bool(report.data) and (report.total is None or following < report.total)
        return Page(report.data, following if more else None)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ApiError(API, "answer is not JSON", status=response.status_code) from exc


def _message(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("message", "error", "detail", "code"):
            if body.get(key):
                return str(body[key])
    return str(body)[:200]
