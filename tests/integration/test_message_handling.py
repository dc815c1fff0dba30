"""Services on the real broker and database: poison messages end in the dead-letter queue with
their reason, redelivered commands store nothing twice, recomputation is idempotent."""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aio_pika
from bson import Decimal128, Int64

from services.analytics.handlers import AnalyticsHandlers
from services.analytics.repository import AnalyticsRepository
from shared import contracts, topology
from shared.broker import REASON_HEADER, Bus, declare_topology, make_broker
from shared.report_versions import bump_report_rows
from shared.sale_chunks import pack, single
from tests.infra import ServiceProcess, free_port, settings_env


async def _get_dead_letter(settings, spec, wait_seconds: float = 20.0) -> aio_pika.abc.AbstractIncomingMessage:
    connection = await aio_pika.connect(settings.rabbit_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.dead_letter_queue_name(settings, spec))
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline:
            message = await queue.get(fail=False)
            if message is not None:
                await message.ack()
                return message
            await asyncio.sleep(0.2)
    raise AssertionError("no dead letter arrived")


async def test_invalid_message_is_dead_lettered_with_its_reason(settings, db) -> None:
    log_dir = Path(tempfile.mkdtemp())
    ingest = ServiceProcess("ingest", "services.ingest.main:app", free_port(), settings_env(settings), log_dir)
    ingest.start()
    try:
        await asyncio.to_thread(ingest.wait_ready)
        connection = await aio_pika.connect(settings.rabbit_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            bus = await channel.get_exchange(topology.bus_exchange(settings).name)
            await bus.publish(
                aio_pika.Message(
                    json.dumps({"report_id": 5, "nonsense": True}).encode(),
                    content_type="application/json",
                    message_id="poison-1",
                ),
                routing_key=topology.UPLOAD_EXCEL.routing_key,
            )
        dead = await _get_dead_letter(settings, topology.UPLOAD_EXCEL)
        assert dead.message_id == "poison-1"
        reason = str(dead.headers[REASON_HEADER])
        assert "ValidationError" in reason and "file_id" in reason
        assert json.loads(dead.body) == {"report_id": 5, "nonsense": True}
    finally:
        ingest.stop()


async def test_sale_recorded_for_unknown_report_is_dead_lettered(settings, db) -> None:
    log_dir = Path(tempfile.mkdtemp())
    ingest = ServiceProcess("ingest", "services.ingest.main:app", free_port(), settings_env(settings), log_dir)
    ingest.start()
    try:
        await asyncio.to_thread(ingest.wait_ready)
        broker = make_broker(settings, registry=_registry())
        async with broker:
            await broker.connect()
            await Bus(broker, settings).publish(
                contracts.SaleRecorded(
                    source="crm",
                    report_id="missing",
                    channel_id=-100,
                    sales=[contracts.RecordedSale(external_id="1", purchase_amount="5")],
                )
            )
        dead = await _get_dead_letter(settings, topology.SALE_RECORDED)
        assert "no report missing" in str(dead.headers[REASON_HEADER])
    finally:
        ingest.stop()


def _registry():
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


async def test_recompute_is_idempotent_and_ignores_unknown_reports(settings, db) -> None:
    now = datetime.now(UTC)
    await db.reports.insert_one(
        {
            "_id": "r",
            "creator_id": 1,
            "channel_id": Int64(-1),
            "name": "n",
            "budget": Decimal128("100"),
            "status": "processing",
            "created_at": now,
        }
    )
    await db.source_reports.insert_one({"_id": "s", "report_id": "r", "status": "ingested", "created_at": now})
    await db.sales.insert_many(pack([
        {"_id": "s:2", "report_id": "r", "source_report_id": "s", "source": "excel", "user_id": Int64(1), "status": "sale",
         "purchase_amount": Decimal128("150.00"), "action_period_ms": Int64(86_400_000)},
        {"_id": "s:3", "report_id": "r", "source_report_id": "s", "source": "excel", "user_id": Int64(2), "status": None},
    ]))  # fmt: skip
    broker = make_broker(settings, registry=_registry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        handlers = AnalyticsHandlers(AnalyticsRepository(db), Bus(broker, settings))
        event = contracts.SalesIngested(report_id="r", source_report_id="s", rows=2)
        await handlers.sales_ingested(event)
        first = await db.reports.find_one({"_id": "r"})
        await handlers.sales_ingested(event)  # redelivery
        second = await db.reports.find_one({"_id": "r"})
        await handlers.sales_ingested(contracts.SalesIngested(report_id="gone", source_report_id="x", rows=0))
    keys = ["subs", "sales", "profit", "romi", "cac", "avg_sale", "status"]
    assert {k: first[k] for k in keys} == {k: second[k] for k in keys}
    assert first["status"] == "success"
    assert first["romi"] == Decimal128("50.00") and first["cpc"] == Decimal128("50.00")
    assert await db.reports.count_documents({"_id": "gone"}) == 0


async def test_events_already_covered_by_a_later_recompute_are_skipped(db, settings, rabbitmq) -> None:
    """A sync announces progress every few seconds; an event whose rows version a saved recompute
    had read is covered by it and costs nothing, an event of a later version recomputes."""
    now = datetime.now(UTC)
    await db.reports.insert_one(
        {"_id": "r", "creator_id": Int64(1), "channel_id": Int64(-1), "name": "n", "budget": Decimal128("100"),
         "status": "processing", "created_at": now}
    )  # fmt: skip
    await db.source_reports.insert_one({"_id": "s", "report_id": "r", "status": "ingested", "created_at": now})
    await db.sales.insert_one(
        single(
            {
                "_id": "s:2",
                "report_id": "r",
                "source_report_id": "s",
                "source": "excel",
                "user_id": Int64(1),
                "status": "sale",
            }
        )
    )
    broker = make_broker(settings, registry=_registry())
    async with broker:
        await broker.connect()
        await declare_topology(broker, settings)
        handlers = AnalyticsHandlers(AnalyticsRepository(db, "scan"), Bus(broker, settings))
        written = await bump_report_rows(db, "r")
        await handlers.sales_ingested(
            contracts.SalesIngested(report_id="r", source_report_id="s", rows=1, rows_version=written)
        )
        first = await db.reports.find_one({"_id": "r"})
        await db.sales.insert_one(
            single(
                {
                    "_id": "s:3",
                    "report_id": "r",
                    "source_report_id": "s",
                    "source": "excel",
                    "user_id": Int64(2),
                    "status": "sale",
                }
            )
        )
        # the first event again (a redelivery), emitted, by its clock, long after the recompute
        stale = contracts.SalesIngested(
            report_id="r", source_report_id="s", rows=1, rows_version=written, occurred_at=now + timedelta(hours=1)
        )
        await handlers.sales_ingested(stale)
        after_stale = await db.reports.find_one({"_id": "r"})
        # a long sync's progress announcement right after a recompute waits for the next one...
        progress = contracts.SalesIngested(
            report_id="r", source_report_id="s", rows=1, settled=False, rows_version=await bump_report_rows(db, "r")
        )
        await handlers.sales_ingested(progress)
        after_progress = await db.reports.find_one({"_id": "r"})
        # ...its settled event never does
        await handlers.sales_ingested(
            contracts.SalesIngested(
                report_id="r", source_report_id="s", rows=2, rows_version=await bump_report_rows(db, "r")
            )
        )
        after_fresh = await db.reports.find_one({"_id": "r"})
    assert first["sales"] == 1 and first["recompute_seconds"] >= 0
    assert after_stale["sales"] == 1 and after_stale["computed_from"] == first["computed_from"]
    assert after_progress["sales"] == 1 and after_progress["computed_from"] == first["computed_from"]
    assert after_fresh["sales"] == 2 and after_fresh["computed_from"] > first["computed_from"]
    # each recompute takes a version after the writes it covers: 1 written, 2 read; 3, 4 written, 5 read
    assert (first["computed_version"], after_fresh["computed_version"]) == (2, 5)
