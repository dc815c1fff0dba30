"""ONE contract suite for the three connectors (parametrised by kind), against the sandbox
emulators on loopback, with the connectors service running as a real subprocess on real
RabbitMQ + SecantusDB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from faststream.rabbit import RabbitBroker
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from shared import contracts, topology
from shared.broker import Bus, declare_topology, make_broker
from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings
from tests.connectors.conftest import Sandbox, control
from tests.connectors.service import ConnectorProcess, make_connection, make_source_report, stored, wait_for

EDUZZ_STATUS = {"paid": "sale", "open": "lead", "waiting_payment": "lead"}


@dataclass(frozen=True)
class KindSpec:
    kind: str
    credentials: dict[str, str]
    wrong: dict[str, str]
    size: int
    options: dict[str, Any] = field(default_factory=dict)
    # Options making a run long enough to be interrupted (small pages, a slow rate).
    slow_options: dict[str, Any] = field(default_factory=dict)
    renews_token: bool = False

    def expected(self, truth: Any) -> list[tuple[str, str, Decimal]]:
        if self.kind == "ofd":
            return sorted((f"day:{d}", "revenue", Decimal(v["revenue"])) for d, v in truth["days"].items())
        if self.kind == "sweetclub":
            return sorted(
                (s["id"], "sale" if s["status"] == "1" else "refunded", Decimal(s["total"])) for s in truth["sales"]
            )
        return sorted((s["id"], EDUZZ_STATUS.get(s["status"], "refunded"), Decimal(s["total"])) for s in truth["sales"])


SPECS = {
    "sweetclub": KindSpec(
        "sweetclub",
        {"username": "testapi@testapi.com", "password": "testapi@testapi.com"},
        {"username": "testapi@testapi.com", "password": "bad-secret-7f3a"},
        size=1100,
        options={"page_size": 500},
        slow_options={"page_size": 25, "fetch_details": False, "rate_per_second": 8, "burst": 1},
        renews_token=True,
    ),
    "eduzz": KindSpec(
        "eduzz",
        {"token": "sandbox-eduzz-token"},
        {"token": "bad-secret-7f3a"},
        size=110,
        slow_options={"fetch_details": False, "rate_per_second": 6, "burst": 1},
    ),
    "ofd": KindSpec(
        "ofd",
        {"yandex_key": "sandbox-yandex-key", "ofd_key": "sandbox-ofd-key"},
        {"yandex_key": "sandbox-yandex-key", "ofd_key": "bad-secret-7f3a"},
        size=900,
        options={"page_size": 60},
        slow_options={"page_size": 8, "rate_per_second": 8, "burst": 1},
    ),
}


def _late_changes_sweetclub(truth: Any) -> list[tuple[str, str]]:
    first_paid = next(s["id"] for s in truth["sales"] if s["status"] == "1")
    return [(first_paid, "0")]  # refunded long after it was made


def _late_changes_eduzz(truth: Any) -> list[tuple[str, str]]:
    # A lead that pays months later (found by payment date), and a refund within the lookback
    # window (refunds of older sales wait for the periodic full re-read: no documented filter).
    lead = next(s["id"] for s in truth["sales"] if s["status"] in ("open", "waiting_payment"))
    recent = next(s["id"] for s in reversed(truth["sales"]) if s["status"] == "paid")
    return [(recent, "refunded"), (lead, "paid")]


# OFD: a return is a receipt of its own day; nothing of an old day changes later.
LATE_CHANGES = {"sweetclub": _late_changes_sweetclub, "eduzz": _late_changes_eduzz, "ofd": lambda truth: []}


@pytest.fixture(params=list(SPECS))
def spec(request: pytest.FixtureRequest) -> KindSpec:
    return SPECS[str(request.param)]


@pytest.fixture
def service(settings: Settings, tmp_path: Path) -> Iterator[ConnectorProcess]:
    proc = ConnectorProcess(settings, tmp_path)
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
async def bus(settings: Settings) -> AsyncIterator[Bus]:
    broker: RabbitBroker = make_broker(settings, registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, settings)
    yield Bus(broker, settings)
    await broker.stop()


async def sync(bus: Bus, conn_id: str, sr_id: str) -> None:
    await bus.publish(contracts.SyncConnection(connection_id=conn_id, source_report_id=sr_id))


async def ingested_events(bus: Bus, settings: Settings) -> int:
    # A fresh passive declaration: the broker object caches its own declarations.
    connection = await aio_pika.connect(settings.rabbit_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.declare_queue(topology.queue_name(settings, topology.SALES_INGESTED), passive=True)
        return int(queue.declaration_result.message_count or 0)


async def test_full_then_incremental_sync(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": spec.size, "seed": 11})
    conn = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.options)
    _, sr = await make_source_report(db, conn, end="2030-12-31")
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr)
    assert doc["progress"]["state"] == "done", doc
    assert doc["progress"]["mode"] == "full" and doc["status"] == "success"
    truth = control(url, "truth", method="GET")
    assert await stored(db, sr) == spec.expected(truth)
    assert await ingested_events(bus, settings) >= 1
    full_pages = doc["progress"]["pages"]

    control(url, "grow", {"count": 30})
    # Old sales change on the platform after the first run read them: the incremental run
    # (which lists only from the last day it saw) must still end with the platform's state.
    for sale_id, new_status in LATE_CHANGES[spec.kind](truth):
        control(url, "status", {"id": sale_id, "status": new_status})
    await sync(bus, conn, sr)
    await asyncio.sleep(0.5)
    doc = await wait_for(db, sr)
    assert doc["progress"]["state"] == "done" and doc["progress"]["mode"] == "incremental"
    assert doc["progress"]["pages"] < full_pages or (spec.kind == "eduzz" and doc["progress"]["pages"] <= full_pages)
    assert await stored(db, sr) == spec.expected(control(url, "truth", method="GET"))
    if spec.kind == "sweetclub":
        reference = await db[COLLECTIONS.reference].find_one({"_id": f"{conn}:sweetclub"})
        assert reference is not None and len(reference["brands"]) == 4 and len(reference["refund_reasons"]) == 4


ODD = {
    "sweetclub": ["delivery_empty_array", "zero_dates", "amounts_as_strings", "missing_detail"],
    "eduzz": ["missing_detail", "extra_fields"],
    "ofd": ["extra_fields"],
}
DETAIL = {"sweetclub": "GET /api/sale/info", "eduzz": "GET /orbita/v1/sales/{id}", "ofd": None}


async def test_odd_payloads_are_counted_and_an_unchanged_repoll_reads_no_detail(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    """SPEC §5 through the real service: odd items never stall a sync and are counted; the re-poll
    of an unchanged account makes no detail call; SweetClub reuses its kept session token."""
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": spec.size, "seed": 17})
    control(url, "quirks", {"quirks": ODD[spec.kind], "share": 0.1, "seed": 1})
    conn = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.options)
    _, sr = await make_source_report(db, conn)
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr, within=120)
    assert doc["progress"]["state"] == "done" and doc["status"] == "success", doc
    assert await stored(db, sr) == spec.expected(control(url, "truth", method="GET"))
    quarantined = await db[COLLECTIONS.quarantine].count_documents({"source_report_id": sr})
    assert doc["progress"]["quarantined"] == quarantined
    assert (quarantined > 0) is (spec.kind != "ofd")  # a 404 on one sale's details is kept aside, with its reason
    control(url, "stats", method="DELETE")
    await sync(bus, conn, sr)
    await asyncio.sleep(0.5)
    again = await wait_for(db, sr, within=120)
    assert again["progress"]["state"] == "done" and again["progress"]["mode"] == "incremental"
    made: dict[str, int] = control(url, "stats", method="GET")["calls"]  # type: ignore[index]
    detail = DETAIL[spec.kind]
    assert detail is None or made.get(detail, 0) == 0, made
    assert again["progress"]["changed"] == 0
    if spec.kind == "sweetclub":
        assert made.get("POST /api/login", 0) == 0  # the token kept on the connection was reused


async def test_every_fault_mid_sync_is_survived(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": spec.size, "seed": 12})
    listing = {"sweetclub": "/api/sale/list", "eduzz": "/orbita/v1/sales$", "ofd": "/v1/docs"}[spec.kind]
    control(
        url,
        "faults",
        [
            {"fault": "429", "path": listing, "skip": 1, "retry_after": 1},
            {"fault": "500", "path": listing, "skip": 1},
            {"fault": "slow", "path": listing, "skip": 1, "delay": 1.5},
            {"fault": "drop", "path": listing, "skip": 1},
        ],
    )
    conn = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.options)
    _, sr = await make_source_report(db, conn)
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr, within=90)
    assert doc["progress"]["state"] == "done", doc
    served = control(url, "stats", method="GET")["faults_served"]  # type: ignore[index]
    assert served == {"429": 1, "500": 1, "slow": 1, "drop": 1}
    assert await stored(db, sr) == spec.expected(control(url, "truth", method="GET"))


async def test_token_expiry_mid_sync(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": spec.size, "seed": 13})
    listing = {"sweetclub": "/api/sale/list", "eduzz": "/orbita/v1/sales$", "ofd": "/v1/docs"}[spec.kind]
    control(url, "faults", {"fault": "expire_token", "path": listing, "skip": 1})
    conn = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.options)
    _, sr = await make_source_report(db, conn)
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr)
    if spec.renews_token:
        assert doc["progress"]["state"] == "done", doc
        assert control(url, "stats", method="GET")["requests"]["/api/login"] == 2  # type: ignore[index]
    else:
        # A static token cannot be renewed: the run stops with a clear message, nothing crashes,
        # and once the platform accepts the credentials again the run resumes at its cursor.
        assert doc["progress"]["state"] == "failed" and doc["status"] == "failed"
        assert "expired" in doc["error_message"] or "refused" in doc["error_message"]
        assert doc["progress"]["pages"] >= 1 and service.alive()
        control(url, "reset", {"size": spec.size, "seed": 13})
        await sync(bus, conn, sr)
        await asyncio.sleep(0.5)
        doc = await wait_for(db, sr)
        assert doc["progress"]["state"] == "done", doc
    assert await stored(db, sr) == spec.expected(control(url, "truth", method="GET"))


async def test_wrong_credentials_fail_clearly(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": 50, "seed": 14})
    conn = await make_connection(db, settings, spec.kind, url, spec.wrong, spec.options)
    _, sr = await make_source_report(db, conn)
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr)
    assert doc["progress"]["state"] == "failed" and doc["status"] == "failed"
    assert spec.kind in doc["error_message"] and ("refused" in doc["error_message"])
    assert "bad-secret-7f3a" not in str(doc)  # credentials never leak into state or messages
    assert await stored(db, sr) == []
    assert service.alive()
    # The same service keeps working for a healthy connection.
    good = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.options)
    _, sr2 = await make_source_report(db, good)
    await sync(bus, good, sr2)
    assert (await wait_for(db, sr2))["progress"]["state"] == "done"


async def test_sigkill_mid_sync_resumes_without_duplicates_or_gaps(
    spec: KindSpec,
    sandbox: Sandbox,
    service: ConnectorProcess,
    db: AsyncDatabase[Document],
    settings: Settings,
    bus: Bus,
) -> None:
    url = sandbox.url(spec.kind)
    control(url, "reset", {"size": spec.size, "seed": 15})
    conn = await make_connection(db, settings, spec.kind, url, spec.credentials, spec.slow_options)
    _, sr = await make_source_report(db, conn)
    await sync(bus, conn, sr)
    await wait_for(db, sr, states=("running",), pages=3)
    service.kill()
    partial = await stored(db, sr)
    expected = spec.expected(control(url, "truth", method="GET"))
    assert 0 < len(partial) < len(expected)
    service.start()
    doc = await wait_for(db, sr, within=120)
    assert doc["progress"]["state"] == "done", doc
    assert await stored(db, sr) == expected
    # Each synced sale is a chunk of one, never a second copy.
    assert await db[COLLECTIONS.sales].count_documents({"source_report_id": sr}) == len(expected)
    # Released after the run: the scheduler lets the lease go once it has drained the connection,
    # a moment after the source shows "done".
    deadline = asyncio.get_running_loop().time() + 5
    while (lease := await db[COLLECTIONS.leases].find_one({"_id": f"connection:{conn}"})) is not None:
        assert asyncio.get_running_loop().time() < deadline, lease
        await asyncio.sleep(0.1)


async def test_a_connection_deleted_before_its_sync_fails_the_source_and_tells_analytics(
    sandbox: Sandbox, service: ConnectorProcess, db: AsyncDatabase[Document], settings: Settings, bus: Bus
) -> None:
    spec = SPECS["sweetclub"]
    conn = await make_connection(db, settings, spec.kind, sandbox.url(spec.kind), spec.credentials, spec.options)
    _, sr = await make_source_report(db, conn)
    # Another source of it was mid-sync when its replica died; a third had settled.
    _, running = await make_source_report(db, conn)
    _, settled = await make_source_report(db, conn)
    await db[COLLECTIONS.connections].delete_one({"_id": conn})  # deleted while the sync request travels
    # Marked running only once the connection is gone: the scheduler resumes running sources on its
    # own tick, and a tick that fell between the two writes once synced this source to success.
    await db[COLLECTIONS.source_reports].update_one({"_id": running}, {"$set": {"progress.state": "running"}})
    await db[COLLECTIONS.source_reports].update_one(
        {"_id": settled}, {"$set": {"progress.state": "done", "status": "success"}}
    )
    before = await ingested_events(bus, settings)
    await sync(bus, conn, sr)
    doc = await wait_for(db, sr)
    assert doc["progress"]["state"] == "failed" and doc["status"] == "failed"
    assert doc["error_message"] == "the connection was deleted"
    assert doc["sync_requested"] is False  # not picked up again by the scheduler
    was_running = await wait_for(db, running)
    assert was_running["status"] == "failed" and was_running["error_message"] == "the connection was deleted"
    untouched = await db[COLLECTIONS.source_reports].find_one({"_id": settled})
    assert untouched is not None and untouched["status"] == "success" and untouched["progress"]["state"] == "done"
    # Analytics is told (settled), so the report does not stay `processing` for ever.
    deadline = asyncio.get_running_loop().time() + 15
    while await ingested_events(bus, settings) <= before:
        assert asyncio.get_running_loop().time() < deadline, "no SalesIngested for the failed source report"
        await asyncio.sleep(0.2)
    assert await stored(db, sr) == []


async def test_health_ready_metrics(service: ConnectorProcess) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{service.port}") as client:
        assert (await client.get("/ready")).json()["ready"] is True
        assert "saleswire_sync_lag_seconds" in (await client.get("/metrics")).text


async def test_scheduled_polling_with_two_replicas(
    sandbox: Sandbox, service: ConnectorProcess, db: AsyncDatabase[Document], settings: Settings, tmp_path: Path
) -> None:
    """No sync command at all: the schedule triggers it; a second replica competes for the lease."""
    second = ConnectorProcess(settings, tmp_path)
    second.start()
    try:
        url = sandbox.eduzz
        control(url, "reset", {"size": 60, "seed": 16})
        conn = await make_connection(db, settings, "eduzz", url, SPECS["eduzz"].credentials)
        # Polls refresh source reports whose period is still open.
        _, sr = await make_source_report(db, conn, end="2030-12-31")
        await db[COLLECTIONS.connections].update_one(
            {"_id": conn}, {"$set": {"poll_interval_seconds": 2, "next_poll_at": datetime.now(UTC)}}
        )
        doc = await wait_for(db, sr)
        assert doc["progress"]["state"] == "done"
        full_pages = int(doc["progress"]["pages"])
        assert await stored(db, sr) == SPECS["eduzz"].expected(control(url, "truth", method="GET"))
        control(url, "grow", {"count": 5})
        await asyncio.sleep(3.5)  # the next poll picks the new sales up
        doc = await wait_for(db, sr)
        assert await stored(db, sr) == SPECS["eduzz"].expected(control(url, "truth", method="GET"))
        # Each page was listed once per run: two replicas never ran the same connection at once.
        listed = control(url, "stats", method="GET")["requests"]["/orbita/v1/sales"]  # type: ignore[index]
        connection = await db[COLLECTIONS.connections].find_one({"_id": conn})
        assert connection is not None and connection["last_synced_at"] is not None
        # The first full run, then at most 3 incremental polls, each at most as many window pages
        # plus its late-payment listing (one page).
        assert listed <= full_pages + 3 * (full_pages + 1), (listed, full_pages)
    finally:
        second.stop()
