"""Yandex OFD under the connector contract, plus late documents: receipts of an offline cash
register that arrive days later for an earlier day are read by the next run's lookback window."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from tests.connectors.conftest import control
from tests.connectors.contract import Expected, InProcess, PlatformContract
from tests.connectors.service import stored


class TestOfd(PlatformContract):
    kind = "ofd"
    credentials: ClassVar[dict[str, str]] = {"yandex_key": "sandbox-yandex-key", "ofd_key": "sandbox-ofd-key"}
    options: ClassVar[dict[str, Any]] = {"page_size": 20}
    listing_route = "POST /v1/docs/aggregations/sales"
    odd_quirks = ("missing_elements", "extra_fields")

    def expected(self, truth: Any) -> Expected:
        return sorted((f"day:{d}", "revenue", Decimal(v["revenue"])) for d, v in truth["days"].items())

    def last_day(self, truth: Any) -> str:
        return str(max(truth["days"]))

    async def test_late_receipts_within_the_lookback_are_read_by_the_next_run(
        self, engine: InProcess, url: str
    ) -> None:
        conn, sr = await self.source(engine, url)
        await engine.run(conn, sr)
        last = date.fromisoformat(max(self.truth(url)["days"]))
        control(url, "receipts", {"count": 3, "at": f"{last - timedelta(days=5)}T12:00:00"})
        doc = await engine.run(conn, sr)
        assert doc["progress"]["mode"] == "incremental" and doc["progress"]["changed"] == 1
        assert await stored(engine.db, sr) == self.expected(self.truth(url))

    async def test_late_receipts_older_than_the_lookback_need_a_longer_one(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url, lookback_days=2)
        await engine.run(conn, sr)
        before = await stored(engine.db, sr)
        last = date.fromisoformat(max(self.truth(url)["days"]))
        control(url, "receipts", {"count": 3, "at": f"{last - timedelta(days=5)}T12:00:00"})
        await engine.run(conn, sr)
        assert await stored(engine.db, sr) == before  # outside a 2-day lookback: not read
        await engine.db["connections"].update_one({"_id": conn}, {"$set": {"options.lookback_days": 7}})
        await engine.run(conn, sr)
        assert await stored(engine.db, sr) == self.expected(self.truth(url))
