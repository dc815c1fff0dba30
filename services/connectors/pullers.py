"""One small adapter per API behind one interface: fetch a page of normalised rows at a cursor,
prove the credentials, read reference data. The sync engine knows nothing else about an API.

Cursors are integers: the page number for SweetClub and Eduzz, the interval offset for OFD.
Each listing is read in an order where new sales only ever append (ids / dates ascending within a
fixed window), so a cursor saved after a page stays valid however long the pause.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Protocol, TypeVar, get_args

from services.connectors import eduzz, ofd, sweetclub
from services.connectors.config import ConnectorSettings
from services.connectors.http import HttpConfig, RetryPolicy
from services.connectors.normalise import DEFAULT_TIMEZONE, Row, RowContext, eduzz_row, ofd_row, sweetclub_row
from shared.credentials import REQUIRED_CREDENTIALS, Kind

T = TypeVar("T")
R = TypeVar("R")


@dataclass(frozen=True)
class Window:
    start: date
    end: date


@dataclass(frozen=True)
class PulledPage:
    rows: list[Row]
    next_cursor: int | None
    # The latest platform day seen on this page (incremental runs restart from it).
    high_water: date | None


class Puller(Protocol):
    api: str
    first_cursor: int

    async def fetch(self, window: Window, cursor: int, ctx: RowContext) -> PulledPage: ...

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> list[Row]:
        """Rows of sales in `period` whose state may have changed after an earlier run read them
        (refunds, cancellations, late payments): what an incremental run reads besides its window,
        so that it ends with what a full re-read would store."""
        ...

    async def check(self) -> str: ...

    async def reference(self) -> dict[str, Any] | None: ...

    async def aclose(self) -> None: ...


async def _bounded(items: list[T], limit: int, call: Callable[[T], Awaitable[R]]) -> list[R]:
    gate = asyncio.Semaphore(max(1, limit))

    async def one(item: T) -> R:
        async with gate:
            return await call(item)

    return list(await asyncio.gather(*(one(i) for i in items)))


class SweetClubPuller:
    api = "sweetclub"
    first_cursor = 1

    def __init__(self, client: sweetclub.SweetClubClient, *, page_size: int, details: bool, parallel: int) -> None:
        self.client = client
        self.page_size = page_size
        self.details = details
        self.parallel = parallel

    async def fetch(self, window: Window, cursor: int, ctx: RowContext) -> PulledPage:
        page = await self.client.sale_list_page(
            cursor, date_start=window.start, date_end=window.end, limit=self.page_size
        )
        high = max((i.date_added.date() for i in page.items), default=None)
        return PulledPage(await self._rows(page.items, ctx), page.next_page, high)

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> list[Row]:
        """Refunds: every cancelled sale of the period (`sale_status=0`; usually few)."""
        items: list[sweetclub.SaleListItem] = []
        page = 1
        while True:
            batch = await self.client.sale_list(
                sale_status="0", limit=self.page_size, page=page, date_start=period.start, date_end=period.end
            )
            items += batch
            if len(batch) < self.page_size:
                return await self._rows(items, ctx)
            page += 1

    async def _rows(self, items: list[sweetclub.SaleListItem], ctx: RowContext) -> list[Row]:
        infos: list[sweetclub.SaleInfo | None] = [None] * len(items)
        if self.details and items:
            infos = list(await _bounded(items, self.parallel, lambda s: self.client.sale_info(s.sale_id)))
        return [sweetclub_row(ctx, item, info) for item, info in zip(items, infos, strict=True)]

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


# Statuses that keep a sale out of the counts (normalised to "refunded").
EDUZZ_EXCLUDED_STATUSES: tuple[eduzz.SaleStatusName, ...] = tuple(
    s for s in get_args(eduzz.SaleStatusName) if s not in ("open", "paid", "waiting_payment")
)


class EduzzPuller:
    api = "eduzz"
    first_cursor = 1

    def __init__(self, client: eduzz.EduzzClient, *, details: bool, parallel: int) -> None:
        self.client = client
        self.details = details
        self.parallel = parallel

    async def fetch(self, window: Window, cursor: int, ctx: RowContext) -> PulledPage:
        page = await self.client.sales_page(cursor, start_date=window.start, end_date=window.end)
        high = max((s.created_at.date() for s in page.items if s.created_at), default=None)
        return PulledPage(await self._rows(page.items, ctx), page.next_page, high)

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> list[Row]:
        """Sales of the period paid since `since` (a lead become a sale), and every sale of the
        period in a status that takes it out of the counts (refunded, canceled...)."""
        found: dict[str, eduzz.Sale] = {}
        # Payments up to today (a January sale may be paid in March), kept if created in the period.
        paid_window = Window(max(since, period.start), max(datetime.now(UTC).date(), period.end))
        queries: list[tuple[Window, eduzz.DateType, eduzz.SaleStatusName | None]] = [
            (paid_window, "payment", None),
            *((period, "creation", status) for status in EDUZZ_EXCLUDED_STATUSES),
        ]
        for window, date_type, status in queries:
            page = 1
            while True:
                answer = await self.client.list_sales(
                    window.start, window.end, date_type=date_type, status=status, page=page
                )
                found.update(
                    (str(s.id), s)
                    for s in answer.items
                    if s.created_at is None or period.start <= s.created_at.date() <= period.end
                )
                if page >= answer.pages or not answer.items:
                    break
                page += 1
        return await self._rows(list(found.values()), ctx)

    async def _rows(self, sales: list[eduzz.Sale], ctx: RowContext) -> list[Row]:
        details: list[eduzz.SaleWithItems | None] = [None] * len(sales)
        if self.details and sales:
            details = list(await _bounded(sales, self.parallel, lambda s: self.client.get_sale(s.id)))
        return [eduzz_row(ctx, sale, detail) for sale, detail in zip(sales, details, strict=True)]

    async def check(self) -> str:
        today = datetime.now(UTC).date()
        answer = await self.client.list_sales(today, today, per_page=1)
        return f"token accepted; {answer.total_items or 0} sales today"

    async def reference(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


class OfdPuller:
    api = "ofd"
    first_cursor = 0

    def __init__(self, client: ofd.OfdClient, *, page_size: int, company_ids: list[str] | None) -> None:
        self.client = client
        self.page_size = page_size
        self.company_ids = company_ids

    async def fetch(self, window: Window, cursor: int, ctx: RowContext) -> PulledPage:
        page = await self.client.day_page(
            cursor, date_from=window.start, date_to=window.end, limit=self.page_size, company_ids=self.company_ids
        )
        rows = [ofd_row(ctx, interval) for interval in page.items]
        high = max((date.fromisoformat(r["extra"]["day"]) for r in rows), default=None)
        return PulledPage(rows, page.next_page, high)

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> list[Row]:
        # A return is a receipt of its own day, and incremental runs re-read from the last day.
        return []

    async def check(self) -> str:
        today = datetime.now(UTC).date()
        report = await self.client.sales_report(
            ofd.SalesQuery(date_from=today.isoformat(), date_to=today.isoformat(), limit=1, interval="day")
        )
        return f"keys accepted; {report.total or 0} intervals today"

    async def reference(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


def http_config(cfg: ConnectorSettings, options: dict[str, Any]) -> HttpConfig:
    return HttpConfig(
        timeout=float(options.get("timeout_seconds", cfg.http_timeout_seconds)),
        connect_timeout=min(5.0, float(options.get("timeout_seconds", cfg.http_timeout_seconds))),
        retry=RetryPolicy(
            attempts=cfg.retry_attempts, base_delay=cfg.retry_base_delay_seconds, max_delay=cfg.retry_max_delay_seconds
        ),
        rate_per_second=float(options.get("rate_per_second", cfg.rate_per_second)),
        burst=int(options.get("burst", cfg.burst)),
    )


class CredentialsError(ValueError):
    """The stored credentials lack a field this kind needs."""


def _need(credentials: dict[str, str], *names: str) -> list[str]:
    missing = [n for n in names if not credentials.get(n)]
    if missing:
        raise CredentialsError(f"credentials lack {', '.join(missing)}")
    return [credentials[n] for n in names]


def timezone_of(kind: Kind, options: dict[str, Any]) -> str:
    return str(options.get("timezone") or DEFAULT_TIMEZONE[kind])


def make_puller(
    kind: Kind, base_url: str, credentials: dict[str, str], options: dict[str, Any], cfg: ConnectorSettings
) -> Puller:
    http = http_config(cfg, options)
    details = bool(options.get("fetch_details", True))
    if kind == "sweetclub":
        username, password = _need(credentials, *REQUIRED_CREDENTIALS[kind])
        return SweetClubPuller(
            sweetclub.SweetClubClient(base_url, username, password, http),
            page_size=min(int(options.get("page_size", sweetclub.MAX_LIMIT)), sweetclub.MAX_LIMIT),
            details=details,
            parallel=cfg.detail_concurrency,
        )
    if kind == "eduzz":
        (token,) = _need(credentials, *REQUIRED_CREDENTIALS[kind])
        return EduzzPuller(eduzz.EduzzClient(base_url, token, http), details=details, parallel=cfg.detail_concurrency)
    yandex_key, ofd_key = _need(credentials, *REQUIRED_CREDENTIALS[kind])
    companies = options.get("company_ids")
    return OfdPuller(
        ofd.OfdClient(base_url, yandex_key, ofd_key, http),
        page_size=int(options.get("page_size", 100)),
        company_ids=[str(c) for c in companies] if companies else None,
    )
