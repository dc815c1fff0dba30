"""Eduzz: a listing whose order the document never states, read exactly anyway.

The period is read in windows of creation dates, each paged to its end; the cursor is (window
start, window days, page), saved after every page. A window is sized to its sales: one whose
first page announces more than `MAX_PAGES` pages is halved before it is read on, one that held
few doubles the next (so empty months cost one call, not thirty). A window counts as read when
the distinct sales seen in it reach the `total_items` of its last page: whatever the order
(oldest or newest first, or none), and whatever was inserted meanwhile, a shortfall means a sale
moved past our pages, and the window is read again from page 1 (idempotent: rows are keyed by
sale id). A run resumed in the middle of a window cannot count what an earlier process saw, so it
re-reads that window whole (at most `MAX_PAGES` pages).

No `status` filter is ever sent (the document types it as an integer and publishes no codes);
sales are classified by `status.name`. Late payments of old leads are found by payment date;
refunds of sales older than the lookback window have no documented way to be found but reading
them again, hence the periodic full re-read of this platform (`full_every_runs`).
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
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
from services.connectors.platforms.eduzz.client import EduzzClient
from services.connectors.platforms.eduzz.models import Sale, SalesPage, SaleWithItems
from services.connectors.platforms.eduzz.rows import detail_fields, listing_row
from shared.credentials import REQUIRED_CREDENTIALS

log = logging.getLogger(__name__)
ID_KEYS = ("id",)
DEFAULT_WINDOW_DAYS = 7
# Re-reads of one window before moving on (the next run's lookback reads it again anyway).
MAX_REREADS = 3


# A window holds at most this many pages (25 sales each) before it is halved: what a re-read costs.
MAX_PAGES = 40
MAX_WINDOW_DAYS = 4 * 366


def window_at(cursor: Cursor, period: Window) -> Window:
    start = date.fromordinal(cursor["start"])
    return Window(start, min(period.end, start + timedelta(days=cursor["days"] - 1)))


class EduzzPuller:
    api = "eduzz"

    def __init__(self, client: EduzzClient, *, details: bool, window_days: int = DEFAULT_WINDOW_DAYS) -> None:
        # Eduzz: completed by `fetch` with the window's start and size.
        self.first_cursor: Cursor = {"page": 1}
        self.client = client
        self.enriches = details
        self.window_days = max(1, window_days)
        # The window being read by this process: the ids seen since its page 1, and its re-reads.
        self._seen: dict[tuple[int, int], set[str]] = {}
        self._unnamed: dict[tuple[int, int], int] = {}
        self._rereads: dict[tuple[int, int], int] = {}

    def _rows(self, raw_items: list[Any], ctx: RowContext) -> tuple[list[Row], list[Quarantined]]:
        return read_each(raw_items, lambda raw: listing_row(ctx, Sale.model_validate(raw)), ID_KEYS)

    async def fetch(self, window: Window, cursor: Cursor, ctx: RowContext) -> PulledPage:
        cursor = {"start": window.start.toordinal(), "days": self.window_days, **cursor}
        part, page_no = window_at(cursor, window), cursor["page"]
        answer, page = await self.client.sales_page(page_no, start_date=part.start, end_date=part.end)
        rows, bad = self._rows(page.items, ctx)
        high = latest_day(rows)
        key = (cursor["start"], cursor["days"])
        if page_no == 1 and answer.pages > MAX_PAGES and cursor["days"] > 1:
            # Too many sales for one window: read it in halves (this page's rows are stored anyway).
            return PulledPage(rows, {**cursor, "days": cursor["days"] // 2, "page": 1}, high, bad)
        if page_no == 1:
            self._seen[key], self._unnamed[key] = set(), 0
        seen = self._seen.get(key)
        if seen is not None:
            seen.update(str(r["extra"]["external_id"]) for r in rows)
            seen.update(q.external_id for q in bad if q.external_id is not None)
            self._unnamed[key] += sum(1 for q in bad if q.external_id is None)
        if page.next_page is not None:
            return PulledPage(rows, {**cursor, "page": page.next_page}, high, bad)
        return PulledPage(rows, self._after_window(cursor, part, window, answer), high, bad)

    def _after_window(self, cursor: Cursor, part: Window, window: Window, answer: SalesPage) -> Cursor | None:
        key = (cursor["start"], cursor["days"])
        seen = self._seen.pop(key, None)
        distinct = None if seen is None else len(seen) + self._unnamed.pop(key, 0)
        total = answer.total_items
        complete = distinct is not None and (total is None or distinct >= total)
        if not complete and self._rereads.get(key, 0) < MAX_REREADS:
            self._rereads[key] = self._rereads.get(key, 0) + 1
            log.info(
                "eduzz window read again",
                extra={"window_start": part.start.isoformat(), "seen": distinct, "total_items": total},
            )
            return {**cursor, "page": 1}
        if not complete:
            log.warning("eduzz window still short after re-reads", extra={"window_start": part.start.isoformat()})
        if part.end >= window.end:
            return None
        days = cursor["days"]
        if answer.pages * 4 <= MAX_PAGES:
            days = min(MAX_WINDOW_DAYS, days * 2)
        return {"start": (part.end + timedelta(days=1)).toordinal(), "days": days, "page": 1}

    async def late_changes(self, period: Window, since: date, ctx: RowContext) -> PulledPage:
        """Sales of the period paid since `since` (a lead become a sale months later)."""
        paid = Window(max(since, period.start), max(datetime.now(UTC).date(), period.end))

        async def read(page_no: int) -> tuple[list[Any], bool]:
            _, page = await self.client.sales_page(
                page_no, start_date=paid.start, end_date=paid.end, date_type="payment"
            )
            return page.items, page.next_page is not None

        late = await every_page(read, lambda items: self._rows(items, ctx))
        return PulledPage([r for r in late.rows if _created_in(r, period)], None, None, late.quarantined)

    async def enrich(self, external_id: str) -> Enrichment:
        return await detail_of(
            external_id,
            self.client.get_sale_raw,
            "sales/{id}",
            lambda raw: detail_fields(SaleWithItems.model_validate(raw)),
        )

    async def check(self) -> str:
        today = datetime.now(UTC).date()
        answer = await self.client.list_sales(today, today, per_page=1)
        return f"token accepted; {answer.total_items or 0} sales today"

    async def reference(self) -> dict[str, Any] | None:
        return None

    async def aclose(self) -> None:
        await self.client.aclose()


def _created_in(row: Row, period: Window) -> bool:
    created = row["extra"].get("created_at")
    return created is None or period.start.isoformat() <= str(created)[:10] <= period.end.isoformat()


def make_puller(args: PullerArgs) -> EduzzPuller:
    (token,) = args.need(*REQUIRED_CREDENTIALS["eduzz"])
    return EduzzPuller(
        EduzzClient(args.base_url, token, args.http),
        details=args.fetch_details,
        window_days=int(args.options.get("window_days", DEFAULT_WINDOW_DAYS)),
    )


PLATFORM = Platform(
    kind="eduzz",
    default_timezone="UTC",
    default_currency="BRL",
    make_puller=make_puller,
    # Refunds of sales older than the lookback window: no documented filter finds them (status
    # codes are unpublished, there is no modification date), only reading the period again.
    full_every_runs=24,
)
