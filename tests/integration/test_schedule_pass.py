"""The scheduler's schedule pass against the real database: a due connection's schedule moves on
and its open sources are asked to sync; a closed, synced source and a connection not yet due are
left alone; and a replica reads the connections no more often than `schedule_seconds`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.config import ConnectorSettings
from services.connectors.sync import Scheduler, Services
from services.connectors.sync.leases import now
from shared.broker import Bus
from shared.mongo import COLLECTIONS, Document, ensure_indexes
from shared.settings import Settings
from tests.integration.test_refund_rows import RecordingBus


def connection(conn_id: str, next_poll_at: datetime, last_synced_at: datetime) -> Document:
    return {
        "_id": conn_id,
        "kind": "eduzz",
        "poll_interval_seconds": 600,
        "next_poll_at": next_poll_at,
        "last_synced_at": last_synced_at,
    }


def source(sr_id: str, conn_id: str, period_end: datetime, status: str) -> Document:
    return {"_id": sr_id, "kind": "connector", "connection_id": conn_id, "period_end": period_end, "status": status}


async def test_a_pass_marks_due_polls_and_passes_are_spaced(db: AsyncDatabase[Document], settings: Settings) -> None:
    await ensure_indexes(db)
    moment = now()
    await db[COLLECTIONS.connections].insert_many(
        [
            connection("due", moment - timedelta(seconds=5), moment - timedelta(hours=3)),
            connection("later", moment + timedelta(minutes=5), moment - timedelta(minutes=1)),
        ]
    )
    await db[COLLECTIONS.source_reports].insert_many(
        [
            source("open", "due", moment + timedelta(days=20), "success"),
            source("closed", "due", moment - timedelta(days=40), "success"),
            source("not-yet-due", "later", moment + timedelta(days=20), "success"),
        ]
    )
    later_before = await db[COLLECTIONS.connections].find_one({"_id": "later"})
    bus: Bus = RecordingBus()
    scheduler = Scheduler(Services(db, bus, settings, ConnectorSettings(schedule_seconds=3600)))

    await scheduler._schedule_pass()

    flagged = await db[COLLECTIONS.source_reports].distinct("_id", {"sync_requested": True})
    assert flagged == ["open"]
    due = await db[COLLECTIONS.connections].find_one({"_id": "due"})
    assert due is not None and due["next_poll_at"].replace(tzinfo=UTC) > moment + timedelta(seconds=590)
    later = await db[COLLECTIONS.connections].find_one({"_id": "later"})
    assert later == later_before
    lag = REGISTRY.get_sample_value("saleswire_sync_lag_seconds", {"api": "eduzz"})
    assert lag is not None and 3 * 3600 <= lag <= 3 * 3600 + 60

    # Within schedule_seconds a second pass reads nothing: a poll that falls due meanwhile waits.
    await db[COLLECTIONS.connections].update_one({"_id": "later"}, {"$set": {"next_poll_at": moment}})
    await scheduler._schedule_pass()
    assert await db[COLLECTIONS.source_reports].distinct("_id", {"sync_requested": True}) == ["open"]

    eager = Scheduler(Services(db, bus, settings, ConnectorSettings(schedule_seconds=0)))
    await eager._schedule_pass()
    assert sorted(await db[COLLECTIONS.source_reports].distinct("_id", {"sync_requested": True})) == [
        "not-yet-due",
        "open",
    ]
