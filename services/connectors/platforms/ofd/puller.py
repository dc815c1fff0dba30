"""Yandex OFD: day totals by offset. No detail calls. Receipts of offline cash registers arrive
days late; the lookback window of every incremental run reads those days again."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from services.connectors.platforms.base.puller import Cursor, Enrichment, PulledPage, Window, read_each
from services.connectors.platforms.base.registry import Platform, PullerArgs
from services.connectors.platforms.base.rows import RowContext
from services.connectors.platforms.ofd.client import OfdClient
from services.connectors.platforms.ofd.models import IntervalRow, SalesQuery
from services.connectors.platforms.ofd.rows import day_row
from shared.credentials import REQUIRED_CREDENTIALS


class OfdPuller:
    api = "ofd"
    enriches = False

    def __init__(self, client: OfdClient, *, page_size: int, company_ids: list[str] | None) -> None:
        self.first_cursor: Cursor = {"offset": 0}
        self.client = client
        self.page_size = page_size
        self.company_ids = company_ids

    async def fetch(self, window: Window, cursor: Cursor, ctx: RowContext) -> PulledPage:
        page = await self.client.day_page(
            cursor["offset"],
            date_from=window.start,
            date_to=window.end,
            limit=self.page_size,
            company_ids=self.company_ids,
        )
        rows, bad = read_each(
            page.items, lambda raw: day_row(ctx, IntervalRow.model_validate(raw)), ("start", "date_from")
        )
        high = max((date.fromisoformat(r["extra"]["day"]) for r in rows), default=None)
        following = None if page.next_page is None else {"offset": page.next_page}
        return PulledPage(rows, following, high, bad)

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> PulledPage:
        # A return is a receipt of its own day; late receipts fall in the lookback window.
        return PulledPage([], None, None)

    async def enrich(self, external_id: str) -> Enrichment:
        return Enrichment(external_id, {})

    async def check(self) -> str:
        today = datetime.now(UTC).date()
        report = await self.client.sales_report(
            SalesQuery(date_from=today.isoformat(), date_to=today.isoformat(), limit=1, interval="day")
        )
        return f"keys accepted; {report.total or 0} intervals today"

    async def reference(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


def make_puller(args: PullerArgs) -> OfdPuller:
    yandex_key, ofd_key = args.need(*REQUIRED_CREDENTIALS["ofd"])
    companies = args.options.get("company_ids")
    return OfdPuller(
        OfdClient(args.base_url, yandex_key, ofd_key, args.http),
        page_size=int(args.options.get("page_size", 100)),
        company_ids=[str(c) for c in companies] if companies else None,
    )


PLATFORM = Platform(
    kind="ofd",
    default_timezone="Europe/Moscow",
    default_currency="RUB",
    make_puller=make_puller,
)
