"""Yandex OFD sales report client (seed: yandex-ofd-sales-report.txt).

`POST /v1/docs/aggregations/sales` with the two key headers; `limit`/`offset` page over the
aggregation intervals and `total` is the number of intervals in the period.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from services.connectors.platforms.base.client import PlatformClient
from services.connectors.platforms.base.http import ApiTransport, HttpConfig, Page
from services.connectors.platforms.base.quirks import parse
from services.connectors.platforms.ofd.models import DEFAULT_DOCUMENT_TYPES, DocumentType, SalesQuery, SalesReport

API = "ofd"


def period_bound(value: date | datetime) -> str:
    """`YYYY-MM-DD` or `YYYY-MM-DD hh:mm:ss` (the API fills the time as start/end of day)."""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return value.isoformat()


class OfdClient(PlatformClient):
    api: ClassVar[str] = API
    auth_statuses: ClassVar[frozenset[int]] = frozenset({401, 403})

    def __init__(
        self,
        base_url: str,
        yandex_key: str,
        ofd_key: str,
        config: HttpConfig | None = None,
        *,
        transport: ApiTransport | None = None,
    ) -> None:
        super().__init__(base_url, config, transport=transport)
        self._headers = {"X-Yandex-Key": yandex_key, "X-OFD-Key": ofd_key, "Content-Type": "application/json"}

    async def auth_headers(self) -> dict[str, str]:
        return self._headers

    def refused_message(self, body: Any) -> str:
        return f"keys refused: {self.error_text(body)}"

    async def sales_report(self, query: SalesQuery) -> SalesReport:
        body = await self.read_json("POST", "v1/docs/aggregations/sales", json=query.body())
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
    ) -> Page[Any]:
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
