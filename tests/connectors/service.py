"""Test helpers: the connectors service as a real subprocess, and direct fixtures in MongoDB."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
from bson import Decimal128, Int64
from pymongo.asynchronous.database import AsyncDatabase

from shared.credentials import CredentialsBox
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import rows_pipeline
from shared.settings import Settings
from tests.infra import ServiceProcess, free_port

CHANNEL = -1001234567890


def service_env(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SALESWIRE_")}
    env.update(
        SALESWIRE_MONGO_URL=settings.mongo_url,
        SALESWIRE_MONGO_DB=settings.mongo_db,
        SALESWIRE_RABBIT_URL=settings.rabbit_url,
        SALESWIRE_NAMESPACE=settings.namespace,
        SALESWIRE_DELIVERY_LIMIT=str(settings.delivery_limit),
        SALESWIRE_LOG_LEVEL="WARNING",
        SALESWIRE_CONNECTORS_LEASE_SECONDS="3",
        SALESWIRE_CONNECTORS_TICK_SECONDS="0.3",
        SALESWIRE_CONNECTORS_SCHEDULE_SECONDS="0.3",
        SALESWIRE_CONNECTORS_HTTP_TIMEOUT_SECONDS="1",
        SALESWIRE_CONNECTORS_RETRY_BASE_DELAY_SECONDS="0.05",
        SALESWIRE_CONNECTORS_RETRY_MAX_DELAY_SECONDS="0.5",
        SALESWIRE_CONNECTORS_PUBLISH_EVERY_SECONDS="0.5",
        SALESWIRE_CONNECTORS_RATE_PER_SECOND="500",
        SALESWIRE_CONNECTORS_BURST="50",
    )
    env.update(extra)
    return env


class ConnectorProcess(ServiceProcess):
    """The connectors service as `tests.infra.ServiceProcess` runs every service, with this suite's
    fast settings; each start() takes a fresh port and waits until the service is ready."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        name = f"connectors-{uuid.uuid4().hex[:6]}"
        super().__init__(name, "services.connectors.main:app", free_port(), service_env(settings), log_dir)

    def start(self) -> None:
        self.port = free_port()
        super().start()
        self.wait_ready(40)

    def alive(self) -> bool:
        return (
            self.proc is not None
            and self.proc.poll() is None
            and httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        )


async def make_connection(
    db: AsyncDatabase[Document],
    settings: Settings,
    kind: str,
    base_url: str,
    credentials: dict[str, str],
    options: dict[str, Any] | None = None,
    creator_id: int = 1,
) -> str:
    conn_id = uuid.uuid4().hex
    await db[COLLECTIONS.connections].insert_one(
        {
            "_id": conn_id,
            "creator_id": creator_id,
            "kind": kind,
            "channel_id": Int64(CHANNEL),
            "name": kind,
            "base_url": base_url,
            "credentials": CredentialsBox(settings).seal(credentials),
            "options": options or {},
            "poll_interval_seconds": 0,
            "next_poll_at": None,
            "created_at": datetime.now(UTC),
        }
    )
    return conn_id


async def make_source_report(
    db: AsyncDatabase[Document], conn_id: str, start: str = "2024-01-01", end: str = "2025-12-31", creator_id: int = 1
) -> tuple[str, str]:
    report_id, sr_id = uuid.uuid4().hex, uuid.uuid4().hex
    await db[COLLECTIONS.reports].insert_one(
        {
            "_id": report_id,
            "creator_id": creator_id,
            "channel_id": Int64(CHANNEL),
            "name": "r",
            "budget": Decimal128("1000"),
            "status": "pending",
        }
    )
    await db[COLLECTIONS.source_reports].insert_one(
        {
            "_id": sr_id,
            "report_id": report_id,
            "kind": "connector",
            "connection_id": conn_id,
            "period_start": datetime.fromisoformat(start).replace(tzinfo=UTC),
            "period_end": datetime.fromisoformat(end).replace(tzinfo=UTC),
            "status": "pending",
            "progress": {"state": "idle"},
            "creator_id": creator_id,
            "channel_id": Int64(CHANNEL),
            "created_at": datetime.now(UTC),
        }
    )
    return report_id, sr_id


async def wait_for(
    db: AsyncDatabase[Document],
    sr_id: str,
    states: tuple[str, ...] = ("done", "failed"),
    within: float = 60,
    **at_least: int,
) -> Document:
    deadline = time.monotonic() + within
    doc: Document | None = None
    while time.monotonic() < deadline:
        doc = await db[COLLECTIONS.source_reports].find_one({"_id": sr_id})
        progress = (doc or {}).get("progress") or {}
        assert isinstance(progress, dict)
        if progress.get("state") in states and all(int(progress.get(k, 0)) >= v for k, v in at_least.items()):
            assert doc is not None
            return doc
        await asyncio.sleep(0.1)
    raise AssertionError(f"source report {sr_id} never reached {states} {at_least}: {doc}")


async def stored(db: AsyncDatabase[Document], sr_id: str) -> list[tuple[str, str, Decimal]]:
    cursor = await db[COLLECTIONS.sales].aggregate(rows_pipeline({"source_report_id": sr_id}))
    rows = await cursor.to_list(None)
    return sorted((r["extra"]["external_id"], r["status"], r["purchase_amount"].to_decimal()) for r in rows)
