"""A month of sales per platform, the way a user gets it: over HTTP, connect SweetClub, Eduzz and
OFD to one report, sync a month from each while the emulators throw 429s and 500s, SIGKILL the
connectors service once in the middle and start it again — and the report ends with exactly the
emulators' data (every sale stored once, sums and counts equal to the emulators' own truth).

Default: 1 500 sales per platform; `SALESWIRE_LONG_TESTS=1`: 50 000 (`SALESWIRE_MONTH_SALES`
overrides either). Prints the figures recorded in docs/reliability.md.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from tests.connectors.conftest import Sandbox, control, sandbox  # noqa: F401 - the session fixture
from tests.connectors.service import stored
from tests.connectors.test_sync_contract import SPECS
from tests.e2e.conftest import Stack
from tests.infra import MongoServer
from tests.reliability.harness import CHANNEL, LONG, running_stack, upload, wait_report
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes

SALES = int(os.environ.get("SALESWIRE_MONTH_SALES", 50_000 if LONG else 1_500))
PERIOD = {"period_start": "2024-01-01", "period_end": "2024-01-31"}
# The emulators spread their sales over 30 days from 2024-01-01: all inside the period.
RESET = {"size": SALES, "seed": 2024, "span_days": 30}
# What the uploaded campaign workbook contributes by itself (tests/workbooks.CAMPAIGN_ROWS).
CAMPAIGN_SALES, CAMPAIGN_PROFIT = 2, Decimal("500.5")
# What a user would set for a platform that allows it: a generous rate budget, big pages.
OPTIONS: dict[str, dict[str, Any]] = {
    "sweetclub": {"rate_per_second": 2000, "burst": 200, "page_size": 1000},
    "eduzz": {"rate_per_second": 2000, "burst": 200},
    "ofd": {"rate_per_second": 2000, "burst": 200, "page_size": 10},
}
# Where each emulator's traffic goes, and roughly how many requests a full sync makes.
FAULT_PATHS = {"sweetclub": "/api/sale/", "eduzz": "/orbita/v1/sales", "ofd": "/v1/docs/aggregations/sales"}
SYNC_ENDED = ("done", "failed")
REQUESTS = {"sweetclub": SALES + SALES // 1000, "eduzz": SALES + SALES // 25, "ofd": 3}


def fault_rules(kind: str) -> list[dict[str, Any]]:
    """Four 429s (Retry-After 0.2 s) and four 500s, spread over the whole sync."""
    path, total = FAULT_PATHS[kind], REQUESTS[kind]
    rules = []
    for k in range(4):
        skip = total * k // 5
        rules.append({"fault": "429", "path": path, "skip": skip, "retry_after": 0.2})
        rules.append({"fault": "500", "path": path, "skip": skip + 1})
    return rules


@pytest.fixture
def month_stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    tuning = {
        "SALESWIRE_CONNECTORS_LEASE_SECONDS": "6",
        "SALESWIRE_CONNECTORS_TICK_SECONDS": "0.5",
        "SALESWIRE_CONNECTORS_SCHEDULE_SECONDS": "0.5",
        "SALESWIRE_CONNECTORS_RETRY_BASE_DELAY_SECONDS": "0.05",
        "SALESWIRE_CONNECTORS_RETRY_MAX_DELAY_SECONDS": "1",
        "SALESWIRE_CONNECTORS_DETAIL_CONCURRENCY": "16",
    }
    with running_stack(mongo_server.url, rabbitmq, connectors=True, extra_env=tuning) as stack:
        yield stack


SLOW_READS: list[float] = []  # progress reads that timed out (the 2 cores are saturated)


def source_of(stack: Stack, user: str, conn_id: str, source_id: str) -> dict[str, Any]:
    """Progress as a user polls it; a read that times out under full load is retried, and counted."""
    url = f"{stack.gateway_url}/connections/{conn_id}/sources/{source_id}"
    while True:
        try:
            return httpx.get(url, headers=stack.headers(user), timeout=15).json()  # type: ignore[no-any-return]
        except httpx.TimeoutException:
            SLOW_READS.append(time.monotonic())
            assert len(SLOW_READS) < 20, "the gateway stopped answering progress reads"


@pytest.mark.timeout(5400 if LONG else 600)
def test_a_month_per_platform_with_faults_and_a_kill_matches_the_emulators(
    month_stack: Stack,
    sandbox: Sandbox,  # noqa: F811
) -> None:
    stack, user = month_stack, "mona"
    h, base = stack.headers(user), stack.gateway_url
    report = wait_report(
        stack, user, upload(stack, user, workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS)).json()["report_id"]
    )
    assert report["sales"] == CAMPAIGN_SALES

    started = time.monotonic()
    sources: dict[str, tuple[str, str]] = {}
    for kind, spec in SPECS.items():
        url = sandbox.url(kind)
        control(url, "reset", RESET)
        control(url, "faults", fault_rules(kind))
        conn = httpx.post(f"{base}/connections", headers=h, timeout=10, json={
            "kind": kind, "channel_id": CHANNEL, "base_url": url, "credentials": spec.credentials,
            "poll_interval_seconds": 0, "options": OPTIONS[kind]}).json()  # fmt: skip
        source = httpx.post(
            f"{base}/connections/{conn['id']}/sources", headers=h, json={"report_id": report["id"], **PERIOD}
        ).json()
        sync = httpx.post(f"{base}/connections/{conn['id']}/sync", headers=h, json={"source_report_id": source["id"]})
        assert sync.status_code == 202, sync.text
        sources[kind] = (conn["id"], source["id"])

    # SIGKILL the connectors service once SweetClub (the longest sync) has listed a third of its
    # sales: mid-listing, or (when its listing outruns the once-a-second progress) mid-enrichment.
    # Either way its run is still going: its `success` status comes with the listing, its
    # progress state `done` only with the run's end.
    deadline = time.monotonic() + (3600 if LONG else 300)
    while (sc := source_of(stack, user, *sources["sweetclub"]))["progress"].get("sales", 0) < SALES // 3:
        assert sc["progress"]["state"] not in SYNC_ENDED, f"finished before the kill: {sc}"
        assert time.monotonic() < deadline, sc
        time.sleep(0.2)
    assert sc["progress"]["state"] not in SYNC_ENDED, f"finished before the kill: {sc}"
    killed_at = time.monotonic() - started
    stack.restart("connectors", kill=True)

    finished: dict[str, float] = {}
    while len(finished) < len(sources):
        for kind, ids in sources.items():
            s = source_of(stack, user, *ids)
            if kind not in finished and s["progress"]["state"] in SYNC_ENDED:
                assert s["status"] == "success" and s["progress"]["state"] == "done", s
                finished[kind] = time.monotonic() - started
        assert time.monotonic() < deadline, {k: source_of(stack, user, *v) for k, v in sources.items()}
        time.sleep(0.5)

    expected_sales, expected_profit, expected_brl = CAMPAIGN_SALES, CAMPAIGN_PROFIT, Decimal(0)
    for kind, (_, source_id) in sources.items():
        truth = SPECS[kind].expected(control(sandbox.url(kind), "truth", method="GET"))
        assert asyncio.run(stored_rows(stack, source_id)) == truth, f"{kind}: stored rows differ from the emulator"
        expected_sales += sum(1 for _, status, _ in truth if status == "sale")
        money = sum((amount for _, status, amount in truth if status in ("sale", "revenue")), Decimal(0))
        # Eduzz sells in BRL: with no rate on the report its money is listed apart, never in profit.
        if kind == "eduzz":
            expected_brl = money
        else:
            expected_profit += money
        served = control(sandbox.url(kind), "stats", method="GET")["faults_served"]  # type: ignore[index]
        assert served.get("429", 0) >= 1 and served.get("500", 0) >= 1, f"{kind}: faults not served: {served}"

    def settled() -> dict[str, Any]:
        r = wait_report(stack, user, report["id"])
        return r if r["sales"] == expected_sales else {}

    deadline = time.monotonic() + 300
    while not (final := settled()) and time.monotonic() < deadline:
        time.sleep(1)
    total = time.monotonic() - started
    assert final, f"the report never reached {expected_sales} sales: {wait_report(stack, user, report['id'])}"
    assert final["status"] == "success"
    assert Decimal(str(final["profit"])) == expected_profit.quantize(Decimal("0.01"))
    assert Decimal(str(final["profit_by_currency"]["BRL"])) == expected_brl.quantize(Decimal("0.01"))
    print(
        f"\n{SALES} sales per platform: killed at {killed_at:.0f}s; synced "
        + ", ".join(f"{k} {t:.0f}s ({SALES / t:,.0f} sales/s)" for k, t in finished.items())
        + f"; report exact after {total:.0f}s; {len(SLOW_READS)} progress reads timed out (15 s) and were retried"
    )


async def stored_rows(stack: Stack, source_id: str) -> list[tuple[str, str, Decimal]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.settings.mongo_url, tz_aware=True)
    try:
        return await stored(client[stack.settings.mongo_db], source_id)
    finally:
        await client.close()
