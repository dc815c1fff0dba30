"""Eduzz Órbita sales API client (seed: eduzz-orbita-sales.md): list and one sale with items.

Auth is a static bearer token: a 401 means the token is wrong or expired, which no retry can
fix, so it surfaces as AuthError with a message saying so.

`status` is typed "integer" by the document, which lists names and publishes no codes: this
client takes only an integer code and the sync never sends one (it classifies by `status.name`).
"""

from __future__ import annotations

from datetime import date
from typing import Any, ClassVar, Literal

from services.connectors.platforms.base.client import PlatformClient
from services.connectors.platforms.base.http import ApiTransport, HttpConfig, Page
from services.connectors.platforms.base.quirks import parse
from services.connectors.platforms.eduzz.models import SalesPage, SaleWithItems

API = "eduzz"
MAX_PER_PAGE = 25
DateType = Literal["creation", "payment"]


class EduzzClient(PlatformClient):
    api: ClassVar[str] = API

    def __init__(
        self, base_url: str, token: str, config: HttpConfig | None = None, *, transport: ApiTransport | None = None
    ) -> None:
        super().__init__(base_url, config, transport=transport)
        self._auth = {"Authorization": f"Bearer {token}"}

    async def auth_headers(self) -> dict[str, str]:
        return self._auth

    def refused_message(self, body: Any) -> str:
        return "bearer token refused (wrong or expired token)"

    async def list_sales(
        self,
        start_date: date,
        end_date: date,
        *,
        date_type: DateType | None = None,
        status: int | None = None,
        page: int | None = None,
        per_page: int | None = MAX_PER_PAGE,
    ) -> SalesPage:
        if per_page is not None and not 1 <= per_page <= MAX_PER_PAGE:
            raise ValueError(f"per_page must be 1..{MAX_PER_PAGE}")
        if status is not None and (isinstance(status, bool) or not isinstance(status, int)):
            raise TypeError("status is an integer code (the document publishes no names for it)")
        params: dict[str, Any] = {"start_date": start_date.isoformat(), "end_date": end_date.isoformat()}
        for key, value in (("date_type", date_type), ("status", status), ("page", page), ("per_page", per_page)):
            if value is not None:
                params[key] = value
        return parse(
            API, "sales", SalesPage.model_validate, await self.read_json("GET", "orbita/v1/sales", params=params)
        )

    async def sales_page(
        self, page: int, *, start_date: date, end_date: date, date_type: DateType = "creation"
    ) -> tuple[SalesPage, Page[Any]]:
        """A page and where the next starts: pages run to `pages`, never beyond."""
        answer = await self.list_sales(start_date, end_date, date_type=date_type, page=page, per_page=MAX_PER_PAGE)
        return answer, Page(answer.items, page + 1 if page < answer.pages and answer.items else None)

    async def get_sale_raw(self, sale_id: int | str) -> Any:
        return await self.read_json("GET", f"orbita/v1/sales/{sale_id}")

    async def get_sale(self, sale_id: int | str) -> SaleWithItems:
        return parse(API, "sale", SaleWithItems.model_validate, await self.get_sale_raw(sale_id))
