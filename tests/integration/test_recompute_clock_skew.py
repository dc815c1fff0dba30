"""Two analytics replicas whose clocks disagree by two hours (one an hour ahead, one an hour
behind), on the real broker and database, consuming one report's events while writers add rows
and the report's exchange rate changes: the report ends final and exact, and no saved state ever
claims a rows version whose rows it lacks (no older computation saved over a newer one).

Under the rule this replaced (skip an event when a saved recompute "started after" it, judged by
wall-clock times with a 2 s allowance) the replica an hour ahead would make every later event
look covered (its start stamped an hour past every event's), and the report would stay at
whatever that replica first saved."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bson import Decimal128
from faststream import AckPolicy
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.handlers import AnalyticsHandlers
from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository, stored_value
from shared import contracts, topology
from shared.broker import Bus, declare_topology, make_broker
from shared.currency import DEFAULT_CURRENCY
from shared.mongo import COLLECTIONS, Document
from shared.report_versions import bump_report_rows
from shared.sale_chunks import single
from shared.settings import Settings
from shared.totals import Totals
from tests.integration.test_recompute_report import make_report, row, set_inputs, wait_for

WRITERS = 4
WRITES_PER_WRITER = 12


class SlowToSave(AnalyticsRepository):
    """Holds each pass's totals a random moment before saving, so that saves of replicas arrive
    out of the order their reads happened in (what a loaded host does)."""

    async def totals(self, report_id: str, report_currency: str = DEFAULT_CURRENCY) -> Totals:
        totals = await super().totals(report_id, report_currency)
        await asyncio.sleep(random.uniform(0.0, 0.08))
        return totals


def skewed(offset: timedelta) -> Callable[[], datetime]:
    return lambda: datetime.now(UTC) + offset


class Replica:
    """One analytics replica: its own broker connection, handlers and clock."""

    def __init__(self, db: AsyncDatabase[Document], settings: Settings, offset: timedelta) -> None:
        self.broker: RabbitBroker = make_broker(settings, registry=CollectorRegistry())
        self.handlers = AnalyticsHandlers(
            SlowToSave(db, "scan"), Bus(self.broker, settings), progress_interval_seconds=0.0, clock=skewed(offset)
        )
        self.handled = 0

        @self.broker.subscriber(
            topology.rabbit_queue(settings, topology.SALES_INGESTED),
            topology.bus_exchange(settings),
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )
        async def on_sales_ingested(event: contracts.SalesIngested) -> None:
            await self.handlers.sales_ingested(event)
            self.handled += 1

        @self.broker.subscriber(
            topology.rabbit_queue(settings, topology.RECOMPUTE_REPORT),
            topology.bus_exchange(settings),
            ack_policy=AckPolicy.NACK_ON_ERROR,
        )
        async def on_recompute_report(command: contracts.RecomputeReport) -> None:
            await self.handlers.recompute_report(command)
            self.handled += 1


async def test_replicas_with_skewed_clocks_leave_every_report_final_and_exact(
    db: AsyncDatabase[Document], settings: Settings
) -> None:
    await make_report(db, [row(1, 1, "10.00", "RUB", "A")])
    # The report's one source is still being read until the writers are done: a connector's sync,
    # whose rows count as they arrive (an Excel file's count from its verdict on, not before).
    await db[COLLECTIONS.source_reports].delete_many({"_id": "s2"})
    await db[COLLECTIONS.source_reports].update_one(
        {"_id": "s1"}, {"$set": {"status": "processing", "kind": "connector"}}
    )
    ahead, behind = Replica(db, settings, timedelta(hours=1)), Replica(db, settings, timedelta(hours=-1))
    publisher = make_broker(settings, registry=CollectorRegistry())
    await publisher.connect()
    await declare_topology(publisher, settings)
    bus = Bus(publisher, settings)
    for replica in (ahead, behind):
        await replica.broker.start()

    # rows each version guarantees: a write's rows are stored before its version is taken
    written: list[tuple[int, int]] = []
    published = 0
    seen: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        nonlocal published
        for k in range(WRITES_PER_WRITER):
            n = 2 + (w * WRITES_PER_WRITER + k) * 2
            currency = "USD" if k % 3 == 0 else "RUB"
            # one row per chunk, as the recorded-sale consumer and the connectors store them
            await db[COLLECTIONS.sales].insert_many(
                [single(row(n, 100 + n, "1.00", currency, "A")), single(row(n + 1, 101 + n, "2.50", "RUB", "B"))]
            )
            version = await bump_report_rows(db, "r")
            assert version is not None
            written.append((version, 2))
            # stamped by a writer whose clock is as wrong as the replicas'
            occurred = datetime.now(UTC) + timedelta(hours=random.choice([-1, 1]))
            await bus.publish(
                contracts.SalesIngested(
                    report_id="r", source_report_id="s1", rows=2, settled=False, rows_version=version,
                    occurred_at=occurred,
                )
            )  # fmt: skip
            published += 1
            await asyncio.sleep(random.uniform(0.0, 0.05))

    async def rates() -> None:
        nonlocal published
        for rate in ("90.10", "91.20", "92.30"):
            await asyncio.sleep(0.3)
            version = await set_inputs(db, exchange_rates={"USD": Decimal128(rate)})
            await bus.publish(contracts.RecomputeReport(report_id="r", reason="exchange_rates", inputs_version=version))
            published += 1

    async def observe() -> None:
        while not done.is_set():
            report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
            if report is not None and report.get("computed_version") is not None:
                seen.append((int(report["computed_version"]), int(report["sales"])))
            await asyncio.sleep(0.01)

    observer = asyncio.create_task(observe())
    try:
        await asyncio.gather(*(writer(w) for w in range(WRITERS)), rates())
        await db[COLLECTIONS.source_reports].update_one({"_id": "s1"}, {"$set": {"status": "success"}})
        final = await bump_report_rows(db, "r")
        assert final is not None
        await bus.publish(contracts.SalesIngested(report_id="r", source_report_id="s1", rows=0, rows_version=final))
        published += 1
        # the recompute of the settled event takes a version of its own, after `final`
        await wait_for(db, lambda r: r.get("status") == "success" and int(r.get("computed_version") or 0) > final)
        for _ in range(300):  # every message handled and acknowledged: none is left unacked
            if ahead.handled + behind.handled == published:
                break
            await asyncio.sleep(0.1)
        report = await db[COLLECTIONS.reports].find_one({"_id": "r"})
    finally:
        done.set()
        await observer
        for replica in (ahead, behind):
            await replica.broker.stop()
        await publisher.stop()

    assert ahead.handled + behind.handled == published
    assert ahead.handled > 0 and behind.handled > 0, "both replicas took part"
    assert report is not None
    rows = 1 + WRITERS * WRITES_PER_WRITER * 2
    assert report["sales"] == rows and report["computed_version"] > final
    inputs_version = int(report["inputs_version"])
    assert inputs_version == 3 and report["applied_inputs_version"] == inputs_version
    # Exact: the figures of a fresh pass over the stored rows with the final rates, field by field.
    truth = compute_metrics(
        Decimal("1000"),
        await AnalyticsRepository(db, "scan").totals("r", "RUB"),
        currency="RUB",
        exchange_rates={"USD": Decimal("92.30")},
    )
    assert {k: report[k] for k in truth.fields} == stored_value(truth.fields)
    links = await db[COLLECTIONS.report_links].find_one({"_id": "r"})
    assert links is not None and links["computed_version"] == report["computed_version"]
    assert links["links"] == stored_value(truth.links)
    # No saved state ever claimed a version whose rows it had not counted, nor went back.
    assert seen, "the observer saw saved states"
    versions = [version for version, _ in seen]
    assert versions == sorted(versions)
    for version, sales in seen:
        assured = 1 + sum(rows for v, rows in written if v <= version)
        assert sales >= assured, (version, sales, assured)
