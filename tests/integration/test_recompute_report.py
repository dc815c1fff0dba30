"""RecomputeReport on the real broker and database: new rates or link costs recompute a report from
the totals its last pass stored (no row is read again), and no update is lost when a recompute
from rows and a recompute from new inputs overlap, in either order."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from bson import Decimal128, Int64
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.handlers import AnalyticsHandlers
from services.analytics.repository import AnalyticsRepository
from shared import contracts
from shared.broker import Bus, declare_topology, make_broker
from shared.links_answer import LINKS_ANSWER_COLLECTION, LINKS_JSON_FIELD, encode_links
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import pack
from shared.settings import Settings
from shared.totals import Totals
from tests.infra import ServiceProcess, free_port, settings_env

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def row(n: int, user: int, amount: str, currency: str, link: str, source: str = "s1") -> dict[str, Any]:
    return {
        "_id": f"{source}:{n}", "report_id": "r", "source_report_id": source, "source": "excel", "row": n,
        "user_id": Int64(user), "customer_key": None, "status": "sale", "purchase_amount": Decimal128(amount),
        "currency": currency, "invite_link": link, "sub_date": T0 + timedelta(days=n), "unsub_date": None,
        "action_date": None, "action_period_ms": None,
    }  # fmt: skip


async def make_report(db: AsyncDatabase[Document], rows: list[dict[str, Any]]) -> None:
    await db[COLLECTIONS.reports].insert_one(
        {"_id": "r", "creator_id": Int64(7), "channel_id": Int64(-1), "name": "n", "budget": Decimal128("1000"),
         "status": "processing", "created_at": T0, "currency": "RUB", "exchange_rates": {}, "link_costs": {},
         "inputs_version": 0}
    )  # fmt: skip
    # Two sources: the report's totals come from a pass over the rows, not from ingest's fold.
    await db[COLLECTIONS.source_reports].insert_many(
        [
            {"_id": "s1", "report_id": "r", "kind": "excel", "status": "ingested", "created_at": T0},
            {"_id": "s2", "report_id": "r", "kind": "excel", "status": "ingested", "created_at": T0},
        ]
    )
    await db[COLLECTIONS.sales].insert_many(pack(rows))


async def set_inputs(db: AsyncDatabase[Document], **inputs: Any) -> int:
    """What the gateway does before it publishes RecomputeReport."""
    report = await db[COLLECTIONS.reports].find_one_and_update(
        {"_id": "r"}, {"$set": inputs, "$inc": {"inputs_version": 1}}, return_document=True
    )
    assert report is not None
    return int(report["inputs_version"])


async def wait_for(db: AsyncDatabase[Document], condition: Any, seconds: float = 60.0) -> Document:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
        if report is not None and condition(report):
            return report
        await asyncio.sleep(0.2)
    raise AssertionError(f"the report never got there: {report}")


def money(value: Any) -> str:
    return str(value.to_decimal())


ROWS = [row(2, 1, "100.00", "RUB", "A"), row(3, 2, "10.00", "BRL", "B"), row(4, 3, "1.00", "USD", "B")]


async def test_new_rates_and_costs_recompute_from_stored_totals_through_the_service(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    await make_report(db, ROWS)
    analytics = ServiceProcess(
        "analytics", "services.analytics.main:app", free_port(), settings_env(settings), Path(tempfile.mkdtemp())
    )
    analytics.start()
    try:
        await asyncio.to_thread(analytics.wait_ready)
        broker = make_broker(settings, registry=CollectorRegistry())
        async with broker:
            await broker.connect()
            bus = Bus(broker, settings)
            await bus.publish(contracts.SalesIngested(report_id="r", source_report_id="s1", rows=3))
            first = await wait_for(db, lambda r: r.get("status") == "success")
            assert money(first["profit"]) == "100.00"
            assert first["warnings"] == [
                "1 sale row in BRL has no exchange rate and is not in profit",
                "1 sale row in USD has no exchange rate and is not in profit",
            ]
            assert first["applied_inputs_version"] == 0

            # The rows are gone: whatever follows is computed from the stored totals alone.
            await db[COLLECTIONS.sales].delete_many({})
            version = await set_inputs(db, exchange_rates={"BRL": Decimal128("16.20")})
            await bus.publish(contracts.RecomputeReport(report_id="r", reason="exchange_rates", inputs_version=version))
            second = await wait_for(db, lambda r: r.get("applied_inputs_version") == version)
            assert money(second["profit"]) == "262.00"  # 100 + 10 × 16.20
            assert second["warnings"] == ["1 sale row in USD has no exchange rate and is not in profit"]
            assert second["subs"] == 3 and second["computed_from"] == first["computed_from"]

            version = await set_inputs(db, link_costs={"B": Decimal128("81.00")})
            await bus.publish(contracts.RecomputeReport(report_id="r", reason="link_costs", inputs_version=version))
            await wait_for(db, lambda r: r.get("applied_inputs_version") == version)
            links = await db[COLLECTIONS.report_links].find_one({"_id": "r"})
            assert links is not None and links["applied_inputs_version"] == version and links["creator_id"] == 7
            b = next(entry for entry in links["links"] if entry["invite_link"] == "B")
            assert (money(b["profit"]), money(b["cost"]), money(b["romi"])) == ("162.00", "81.00", "100.00")
    finally:
        analytics.stop()


class PausingRepository(AnalyticsRepository):
    """The real repository, held at one point so that the test can interleave two recomputes."""

    def __init__(self, db: AsyncDatabase[Document], pause: str) -> None:
        super().__init__(db, "scan")
        self.pause = pause
        self.reached = asyncio.Event()
        self.go_on = asyncio.Event()

    async def _hold(self, point: str) -> None:
        if self.pause == point and not self.reached.is_set():
            self.reached.set()
            await self.go_on.wait()

    async def totals(self, report_id: str, report_currency: str = "RUB") -> Totals:
        totals = await super().totals(report_id, report_currency)
        await self._hold("after_totals")
        return totals

    async def save_figures(self, report_id: str, fields: dict[str, Any], totals: Totals, **kwargs: Any) -> bool:
        await self._hold("before_save")
        return await super().save_figures(report_id, fields, totals, **kwargs)


async def test_new_inputs_during_a_recompute_from_rows_are_not_lost(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    await make_report(db, ROWS)
    broker = make_broker(settings, registry=CollectorRegistry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        bus = Bus(broker, settings)
        plain = AnalyticsHandlers(AnalyticsRepository(db, "scan"), bus)
        await plain.sales_ingested(contracts.SalesIngested(report_id="r", source_report_id="s1", rows=3))
        # New rows arrive, and a recompute from rows starts reading them...
        await db[COLLECTIONS.sales].insert_many(pack([row(5, 4, "2.00", "BRL", "A", source="s2")]))
        paused = PausingRepository(db, "after_totals")
        from_rows = asyncio.create_task(
            AnalyticsHandlers(paused, bus).sales_ingested(
                contracts.SalesIngested(report_id="r", source_report_id="s2", rows=1)
            )
        )
        await asyncio.wait_for(paused.reached.wait(), 30)
        # ...while the seller sets a rate, and that recompute (from the old totals) finishes first.
        version = await set_inputs(db, exchange_rates={"BRL": Decimal128("16.20")})
        await plain.recompute_report(
            contracts.RecomputeReport(report_id="r", reason="exchange_rates", inputs_version=version)
        )
        middle = await db[COLLECTIONS.reports].find_one({"_id": "r"})
        assert middle is not None and money(middle["profit"]) == "262.00" and middle["subs"] == 3
        paused.go_on.set()
        await asyncio.wait_for(from_rows, 30)
    report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
    assert report is not None
    # the newest rows (user 4's BRL 2.00) AND the newest rate
    assert (report["subs"], report["applied_inputs_version"]) == (4, version)
    assert money(report["profit"]) == "294.40"  # 100 + 12 × 16.20
    links = await db[COLLECTIONS.report_links].find_one({"_id": "r"})
    assert links is not None and links["applied_inputs_version"] == version
    assert sum(entry["subs"] for entry in links["links"]) == 4
    # The gateway's one read: the answer's bytes alone, saved under the same guards, for the same state.
    answer = await db[LINKS_ANSWER_COLLECTION].find_one({"_id": "r"})
    assert answer is not None and answer["applied_inputs_version"] == version
    assert bytes(answer[LINKS_JSON_FIELD]) == encode_links(links["links"])
    assert sum(entry["subs"] for entry in json.loads(answer[LINKS_JSON_FIELD])) == 4


async def test_a_recompute_from_new_inputs_that_saves_last_keeps_the_newest_rows(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    await make_report(db, ROWS)
    broker = make_broker(settings, registry=CollectorRegistry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        bus = Bus(broker, settings)
        plain = AnalyticsHandlers(AnalyticsRepository(db, "scan"), bus)
        await plain.sales_ingested(contracts.SalesIngested(report_id="r", source_report_id="s1", rows=3))
        # The seller sets a rate; its recompute reads the stored (old) totals and is held before saving...
        version = await set_inputs(db, exchange_rates={"BRL": Decimal128("16.20")})
        paused = PausingRepository(db, "before_save")
        from_inputs = asyncio.create_task(
            AnalyticsHandlers(paused, bus).recompute_report(
                contracts.RecomputeReport(report_id="r", reason="exchange_rates", inputs_version=version)
            )
        )
        await asyncio.wait_for(paused.reached.wait(), 30)
        # ...while new rows arrive and a recompute from rows saves them (with the rate it reads).
        await db[COLLECTIONS.sales].insert_many(pack([row(5, 4, "2.00", "BRL", "A", source="s2")]))
        await plain.sales_ingested(contracts.SalesIngested(report_id="r", source_report_id="s2", rows=1))
        paused.go_on.set()
        await asyncio.wait_for(from_inputs, 30)
    report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
    assert report is not None
    assert (report["subs"], report["applied_inputs_version"], money(report["profit"])) == (4, version, "294.40")
    links = await db[COLLECTIONS.report_links].find_one({"_id": "r"})
    assert links is not None and sum(entry["subs"] for entry in links["links"]) == 4


async def test_new_inputs_on_a_report_never_computed_compute_it_from_rows_and_keep_its_status(
    settings: Settings, db: AsyncDatabase[Document]
) -> None:
    await make_report(db, ROWS)
    version = await set_inputs(db, exchange_rates={"BRL": Decimal128("16.20")})
    broker = make_broker(settings, registry=CollectorRegistry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        handlers = AnalyticsHandlers(AnalyticsRepository(db, "scan"), Bus(broker, settings))
        await handlers.recompute_report(
            contracts.RecomputeReport(report_id="r", reason="exchange_rates", inputs_version=version)
        )
    report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
    assert report is not None
    assert (report["status"], report["applied_inputs_version"], money(report["profit"])) == ("processing", 1, "262.00")
    assert report["totals"]["version"] == 2  # what the next change of inputs recomputes from


async def test_an_excel_file_counts_from_its_verdict_on_not_before(db: AsyncDatabase[Document]) -> None:
    # s2 is a large file read in parts: its first chunks are stored before it is judged.
    await make_report(db, [row(1, 1, "10.00", "RUB", "A"), row(2, 2, "5.00", "RUB", "B", source="s2")])
    for strategy in ("scan", "aggregate"):
        repo = AnalyticsRepository(db, strategy)
        for status, counted in (("processing", False), ("pending", False), ("storing", True), ("ingested", True)):
            await db[COLLECTIONS.source_reports].update_one({"_id": "s2"}, {"$set": {"status": status}})
            totals = await repo.totals("r")
            assert totals.revenue == {"RUB": Decimal("15.00" if counted else "10.00")}, (strategy, status)
    # A connector's sync counts its rows as they arrive, while it runs.
    await db[COLLECTIONS.source_reports].update_one(
        {"_id": "s2"}, {"$set": {"status": "processing", "kind": "connector"}}
    )
    assert (await AnalyticsRepository(db, "scan").totals("r")).revenue == {"RUB": Decimal("15.00")}
