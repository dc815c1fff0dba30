"""Eduzz Órbita under the connector contract, plus what its document leaves open: no order is
promised for the listing (newest first, shuffled, sales inserted while a sync pages) and `status`
is an integer with unpublished codes (never sent; classified by `status.name`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

import pytest

from tests.connectors.conftest import control
from tests.connectors.contract import Expected, InProcess, PlatformContract
from tests.connectors.service import stored

STATUS = {"paid": "sale", "open": "lead", "waiting_payment": "lead"}


class TestEduzz(PlatformContract):
    kind = "eduzz"
    credentials: ClassVar[dict[str, str]] = {"token": "sandbox-eduzz-token"}
    listing_route = "GET /orbita/v1/sales"
    detail_route = "GET /orbita/v1/sales/{id}"
    odd_quirks = ("missing_detail", "extra_fields")
    quarantining_quirks = ("missing_detail",)
    currency = "BRL"

    def expected(self, truth: Any) -> Expected:
        return sorted((s["id"], STATUS.get(s["status"], "refunded"), Decimal(s["total"])) for s in truth["sales"])

    def last_day(self, truth: Any) -> str:
        return max(str(s["created_at"])[:10] for s in truth["sales"])

    def late_listing_calls(self) -> int:
        return 1  # late payments, by payment date (one page)

    @pytest.mark.parametrize("order", ["newest_first", "shuffled"])
    async def test_any_listing_order_with_sales_inserted_mid_sync_is_read_exactly(
        self, engine: InProcess, url: str, order: str
    ) -> None:
        control(url, "options", {"order": order})
        # Sales made while the sync pages: dated inside windows already read and still to read.
        control(url, "sales", {"count": 6, "created_at": "2024-01-20T10:00:00Z", "after_listing_requests": 3})
        control(url, "sales", {"count": 4, "after_listing_requests": 5, "seed": 2})
        conn, sr = await self.source(engine, url, fetch_details=False)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done", doc
        truth = self.truth(url)
        assert len(truth["sales"]) == self.size + 10
        assert await stored(engine.db, sr) == self.expected(truth)

    async def test_the_currency_option_overrides_brl(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url, currency="USD", fetch_details=False)
        await engine.run(conn, sr)
        assert {r["currency"] for r in await engine.rows(sr)} == {"USD"}

    async def test_a_lead_paid_long_after_is_found_by_payment_date(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url, fetch_details=False)
        await engine.run(conn, sr)
        lead = next(s["id"] for s in self.truth(url)["sales"] if s["status"] in ("open", "waiting_payment"))
        control(url, "status", {"id": lead, "status": "paid"})
        doc = await engine.run(conn, sr)
        assert doc["progress"]["mode"] == "incremental"
        assert datetime.now(UTC).date().isoformat() >= doc["progress"]["window_start"]
        assert await stored(engine.db, sr) == self.expected(self.truth(url))
