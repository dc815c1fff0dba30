"""The connector contract, written once; each platform's test file subclasses it in a few lines
(as FastStream tests its brokers and Meltano its taps).

In-process tier: the sync engine runs in the test's own event loop against the platform's
emulator on a loopback port (real HTTP, so dropped connections and timeouts are real) and the
test's own SecantusDB database; nothing goes through the broker (the engine's SalesIngested
events are recorded, `tests/integration/test_refund_rows.RecordingBus`). The end-to-end tier,
the same rules through the real service and broker, is `test_sync_contract.py`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.config import ConnectorSettings
from services.connectors.sync import Services, SyncEngine
from shared.mongo import COLLECTIONS, Document, ensure_indexes
from shared.sale_chunks import rows_pipeline
from shared.settings import Settings
from tests.connectors.conftest import Sandbox, control
from tests.connectors.service import make_connection, make_source_report, stored
from tests.integration.test_refund_rows import RecordingBus

FAST = ConnectorSettings(
    http_timeout_seconds=2,
    retry_base_delay_seconds=0.05,
    retry_max_delay_seconds=0.3,
    rate_per_second=500,
    burst=50,
    publish_every_seconds=0.2,
    detail_concurrency=8,
)
Expected = list[tuple[str, str, Decimal]]


def calls(url: str) -> dict[str, int]:
    return dict(control(url, "stats", method="GET")["calls"])  # type: ignore[index]


def forget_calls(url: str) -> None:
    control(url, "stats", method="DELETE")


@dataclass
class InProcess:
    """The connectors' sync engine on the test's database, without the service or the broker."""

    db: AsyncDatabase[Document]
    settings: Settings
    svc: Services
    bus: RecordingBus

    async def run(self, conn_id: str, sr_id: str) -> Document:
        conn = await self.db[COLLECTIONS.connections].find_one({"_id": conn_id})
        sr = await self.db[COLLECTIONS.source_reports].find_one({"_id": sr_id})
        assert conn is not None and sr is not None
        await SyncEngine(self.svc).sync_source_report(conn, sr)
        doc = await self.db[COLLECTIONS.source_reports].find_one({"_id": sr_id})
        assert doc is not None
        return doc

    async def rows(self, sr_id: str) -> list[Document]:
        cursor = await self.db[COLLECTIONS.sales].aggregate(rows_pipeline({"source_report_id": sr_id}))
        return list(await cursor.to_list(None))

    async def pending(self, sr_id: str) -> int:
        return await self.db[COLLECTIONS.sales].count_documents({"source_report_id": sr_id, "enrich_pending": True})


class PlatformContract:
    """What every connector must do. Subclasses say which platform and how it shows its data."""

    kind: ClassVar[str]
    credentials: ClassVar[dict[str, str]]
    options: ClassVar[dict[str, Any]] = {}
    size: ClassVar[int] = 240
    listing_route: ClassVar[str]
    # The route of the per-sale detail call, None for a platform without one.
    detail_route: ClassVar[str | None] = None
    # Odd payloads the platform's emulator can send; the sync must read on through all of them.
    odd_quirks: ClassVar[tuple[str, ...]] = ()
    # Of those, the ones that leave an item unreadable (quarantined) rather than read leniently.
    quarantining_quirks: ClassVar[tuple[str, ...]] = ()
    currency: ClassVar[str] = "RUB"

    def expected(self, truth: Any) -> Expected:
        raise NotImplementedError

    def last_day(self, truth: Any) -> str:
        """The day of the platform's newest data (YYYY-MM-DD)."""
        raise NotImplementedError

    def recent_day(self, truth: Any) -> str:
        """Five days before the newest data: inside the default 7-day lookback window."""
        return (date.fromisoformat(self.last_day(truth)) - timedelta(days=5)).isoformat()

    # -- fixtures

    @pytest.fixture
    async def engine(self, db: AsyncDatabase[Document], settings: Settings) -> InProcess:
        await ensure_indexes(db)
        bus = RecordingBus()
        return InProcess(db, settings, Services(db=db, bus=bus, settings=settings, cfg=FAST), bus)

    @pytest.fixture
    def url(self, sandbox: Sandbox) -> str:
        url = sandbox.url(self.kind)
        control(url, "reset", {"size": self.size, "seed": 21, "span_days": 60})
        return url

    async def source(self, engine: InProcess, url: str, **options: Any) -> tuple[str, str]:
        conn = await make_connection(
            engine.db, engine.settings, self.kind, url, self.credentials, {**self.options, **options}
        )
        _, sr = await make_source_report(engine.db, conn, start="2024-01-01", end="2024-12-31")
        return conn, sr

    def truth(self, url: str) -> Any:
        return control(url, "truth", method="GET")

    # -- the contract

    async def test_a_first_sync_stores_every_sale_once_and_enriches_each_once(
        self, engine: InProcess, url: str
    ) -> None:
        conn, sr = await self.source(engine, url)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done" and doc["status"] == "success", doc
        assert await stored(engine.db, sr) == self.expected(self.truth(url))
        rows = await engine.rows(sr)
        assert {r["currency"] for r in rows} == {self.currency}
        assert doc["progress"]["quarantined"] == 0 and doc["progress"]["listed_at"] is not None
        assert await engine.pending(sr) == 0
        if self.detail_route is not None:
            assert calls(url).get(self.detail_route, 0) == len(rows) == doc["progress"]["enriched"]
        # The report was told as soon as the listing was read, and again at the end.
        settled = [m for m in engine.bus.published if getattr(m, "settled", False)]
        assert len(settled) == 2

    async def test_an_unchanged_repoll_costs_its_listing_pages_alone(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url)
        await engine.run(conn, sr)
        before = await stored(engine.db, sr)
        forget_calls(url)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done" and doc["progress"]["mode"] == "incremental"
        made = calls(url)
        if self.detail_route is not None:
            assert made.get(self.detail_route, 0) == 0, made
        assert doc["progress"]["changed"] == 0 and doc["progress"]["enriched"] == 0
        assert sum(made.values()) <= doc["progress"]["pages"] + self.late_listing_calls(), made
        assert await stored(engine.db, sr) == before

    def late_listing_calls(self) -> int:
        """Listing calls an incremental run makes besides its window's pages (late changes)."""
        return 0

    async def test_changed_sales_alone_are_written_and_enriched_again(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url)
        await engine.run(conn, sr)
        changed = control(url, "change", {"count": 5, "field": "total", "since": self.recent_day(self.truth(url))})
        assert changed["changed"] == 5  # type: ignore[index]
        forget_calls(url)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["changed"] == 5, doc["progress"]
        if self.detail_route is not None:
            assert calls(url).get(self.detail_route, 0) == 5
        assert await stored(engine.db, sr) == self.expected(self.truth(url))

    async def test_odd_payloads_never_stall_a_sync(self, engine: InProcess, url: str) -> None:
        if not self.odd_quirks:
            pytest.skip("this emulator has no odd payloads")  # pragma: no cover - every platform has some
        control(url, "quirks", {"quirks": list(self.odd_quirks), "share": 0.25, "seed": 5})
        conn, sr = await self.source(engine, url)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done" and doc["status"] == "success", doc
        assert await stored(engine.db, sr) == self.expected(self.truth(url))
        quarantined = await engine.db[COLLECTIONS.quarantine].find({"source_report_id": sr}).to_list()
        assert doc["progress"]["quarantined"] == len(quarantined)
        if self.quarantining_quirks:
            assert quarantined and all(q["reason"] and q["stage"] in ("listing", "detail") for q in quarantined)
        assert await engine.pending(sr) == 0

    async def stop_midway(
        self, engine: InProcess, url: str, sr: str, run: asyncio.Task[Document], route: str, at: int
    ) -> None:
        while (await asyncio.to_thread(calls, url)).get(route, 0) < at:  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the emulator's counters are the only signal
        run.cancel()  # what a SIGKILL does to the run, at an await
        with pytest.raises(asyncio.CancelledError):
            await run

    async def test_a_run_stopped_midway_resumes_where_it_stopped(self, engine: InProcess, url: str) -> None:
        """Stopped while enriching (a platform with detail calls) or while listing (one without)."""
        slow = {"rate_per_second": 80, "burst": 4, "detail_concurrency": 2}
        if self.detail_route is None:
            slow = {"rate_per_second": 4, "burst": 1, "page_size": 5}
        conn, sr = await self.source(engine, url, **slow)
        route, at = (self.detail_route, self.size // 3) if self.detail_route else (self.listing_route, 3)
        await self.stop_midway(engine, url, sr, asyncio.create_task(engine.run(conn, sr)), route, at)
        expected = self.expected(self.truth(url))
        partial = await stored(engine.db, sr)
        if self.detail_route is not None:
            assert partial == expected  # the listing is stored and counted already
            assert 0 < await engine.pending(sr) < self.size
        else:
            assert 0 < len(partial) < len(expected)
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done" and await engine.pending(sr) == 0
        assert await stored(engine.db, sr) == expected
        made = calls(url)
        if self.detail_route is not None:
            # At most the batch in flight at the stop is read twice (2 × 8 calls here).
            assert made[self.detail_route] <= self.size + 16
        else:
            assert made[self.listing_route] <= doc["progress"]["pages"] + 1  # the page in flight, again
