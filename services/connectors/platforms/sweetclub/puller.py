"""SweetClub: the listing in id order (ids only grow), one `sale/info` per new or changed sale,
refunds of the whole period as late changes (`sale_status=0`, a documented filter)."""

from __future__ import annotations

from datetime import date
from typing import Any

from services.connectors.platforms.base.puller import (
    Cursor,
    Enrichment,
    PulledPage,
    Quarantined,
    Window,
    detail_of,
    every_page,
    latest_day,
    read_each,
)
from services.connectors.platforms.base.registry import Platform, PullerArgs
from services.connectors.platforms.base.rows import Row, RowContext
from services.connectors.platforms.sweetclub.client import MAX_LIMIT, SweetClubClient
from services.connectors.platforms.sweetclub.models import SaleInfo, SaleListItem
from services.connectors.platforms.sweetclub.rows import detail_fields, listing_row
from shared.credentials import REQUIRED_CREDENTIALS

ID_KEYS = ("sale_id", "id")


class SweetClubPuller:
    api = "sweetclub"

    def __init__(self, client: SweetClubClient, *, page_size: int, details: bool) -> None:
        self.first_cursor: Cursor = {"page": 1}
        self.client = client
        self.page_size = page_size
        self.enriches = details

    def _rows(self, raw_items: list[Any], ctx: RowContext) -> tuple[list[Row], list[Quarantined]]:
        return read_each(raw_items, lambda raw: listing_row(ctx, SaleListItem.model_validate(raw)), ID_KEYS)

    async def fetch(self, window: Window, cursor: Cursor, ctx: RowContext) -> PulledPage:
        page = await self.client.sale_list_page(
            cursor["page"], date_start=window.start, date_end=window.end, limit=self.page_size
        )
        rows, bad = self._rows(page.items, ctx)
        following = None if page.next_page is None else {"page": page.next_page}
        return PulledPage(rows, following, latest_day(rows), bad)

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> PulledPage:
        """Refunds: every cancelled sale of the period (`sale_status=0`; usually few pages)."""

        async def read(page: int) -> tuple[list[Any], bool]:
            batch = await self.client.sale_list_raw(
                sale_status="0", limit=self.page_size, page=page, date_start=period.start, date_end=period.end
            )
            return batch, len(batch) >= self.page_size

        return await every_page(read, lambda items: self._rows(items, ctx))

    async def enrich(self, external_id: str) -> Enrichment:
        return await detail_of(
            external_id,
            self.client.sale_info_raw,
            "sale/info",
            lambda raw: detail_fields(SaleInfo.model_validate(raw)),
        )

    async def check(self) -> str:
        await self.client.login()
        brands = await self.client.brand_list()
        return f"logged in; {len(brands)} brands available"

    async def reference(self) -> dict[str, Any] | None:
        brands = await self.client.brand_list()
        infos = [info for b in brands for info in await self.client.brand_info(b.brand_id)]
        reasons = await self.client.refund_reasons()
        return {
            "brands": [b.model_dump(mode="json") for b in infos],
            "refund_reasons": [r.model_dump(mode="json") for r in reasons.return_reasons],
        }

    async def aclose(self) -> None:
        await self.client.aclose()


def make_client(args: PullerArgs) -> SweetClubClient:
    username, password = args.need(*REQUIRED_CREDENTIALS["sweetclub"])
    return SweetClubClient(args.base_url, username, password, args.http, session=args.session)


def make_puller(args: PullerArgs) -> SweetClubPuller:
    return SweetClubPuller(
        make_client(args),
        page_size=min(int(args.options.get("page_size", MAX_LIMIT)), MAX_LIMIT),
        details=args.fetch_details,
    )


PLATFORM = Platform(
    kind="sweetclub",
    default_timezone="Europe/Moscow",
    default_currency="RUB",
    make_puller=make_puller,
    keeps_session=True,
)
