"""Connector sales in reports, end to end through HTTP: connect SweetClub (the sandbox), attach it
to a report, sync, and the report's metrics include exactly the sandbox's paid sales; a refund
made through the gateway takes the sale out of the counts."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx

from tests.connectors.conftest import Sandbox, control, sandbox  # noqa: F401 - the session fixture
from tests.e2e.conftest import Stack
from tests.e2e.test_upload_report import CHANNEL, upload, wait_report
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes

SC_CREDENTIALS = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}


def wait_until(check: Any, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.3)


def test_synced_sales_enter_the_report_and_a_refund_leaves_it(stack: Stack, sandbox: Sandbox) -> None:  # noqa: F811
    control(sandbox.sweetclub, "reset", {"size": 120, "seed": 5})
    truth = control(sandbox.sweetclub, "truth", method="GET")["sales"]  # type: ignore[index]
    paid = [s for s in truth if s["status"] == "1"]
    assert paid, "the sandbox data must contain paid sales"
    user = "erin"
    h = stack.headers(user)
    base = stack.gateway_url
    report = wait_report(
        stack, user, upload(stack, user, workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS)).json()["report_id"]
    )
    assert report["sales"] == 2

    conn = httpx.post(f"{base}/connections", headers=h, json={
        "kind": "sweetclub", "channel_id": CHANNEL, "base_url": sandbox.sweetclub,
        "credentials": SC_CREDENTIALS, "poll_interval_seconds": 0}).json()  # fmt: skip
    cid = f"check-{conn['id']}"
    check = httpx.post(
        f"{base}/connections/{conn['id']}/check", headers={**h, "X-Correlation-ID": cid}, timeout=30
    ).json()
    assert check["state"] == "done" and check["result"]["ok"] is True
    # the request's correlation id travelled with the command into the connectors service's logs
    assert any(
        cid in line and '"correlation_id"' in line
        for line in stack.processes["connectors"].log_path.read_text().splitlines()
    )
    period = {"report_id": report["id"], "period_start": "2000-01-01", "period_end": "2035-12-31"}
    source = httpx.post(f"{base}/connections/{conn['id']}/sources", headers=h, json=period).json()
    sync_cid = f"sync-{conn['id']}"
    sync = httpx.post(
        f"{base}/connections/{conn['id']}/sync",
        headers={**h, "X-Correlation-ID": sync_cid},
        json={"source_report_id": source["id"]},
    )
    assert sync.status_code == 202

    def synced() -> dict[str, Any] | None:
        s = httpx.get(f"{base}/connections/{conn['id']}/sources/{source['id']}", headers=h).json()
        return s if s["status"] in ("success", "failed") else None

    progress = wait_until(synced)
    assert progress and progress["status"] == "success", progress
    expected_sales = 2 + len(paid)
    expected_profit = Decimal("500.5") + sum(Decimal(s["total"]) for s in paid)
    report = wait_until(lambda: (r := wait_report(stack, user, report["id"]))["sales"] == expected_sales and r)
    assert report, "the report never included the synced sales"

    # the sync request's correlation id followed the work into the background run and its events
    # (analytics logs after it saves, so wait for the line rather than race the report read)
    def logged(name: str, *needles: str) -> bool:
        return any(all(n in line for n in needles) for line in stack.processes[name].log_path.read_text().splitlines())

    # Logged after the sync's last announcement, which may come after the report is already right.
    assert wait_until(lambda: logged("connectors", "sync finished", sync_cid), timeout=30)
    assert wait_until(lambda: logged("analytics", sync_cid), timeout=30)
    assert Decimal(str(report["profit"])) == expected_profit.quantize(Decimal("0.01"))
    assert report["subs"] == 5  # platform buyers are not channel subscribers
    assert {s["kind"] for s in report["source_reports"]} == {"excel", "connector"}

    refunded = paid[0]
    answer = httpx.post(
        f"{base}/connections/{conn['id']}/sweetclub/refunds",
        headers=h,
        timeout=30,
        json={"sale_id": refunded["id"], "return_reason_id": "3"},
    ).json()
    assert answer["state"] == "done", answer
    report = wait_until(lambda: (r := wait_report(stack, user, report["id"]))["sales"] == expected_sales - 1 and r)
    assert report, "the refunded sale is still counted"
    assert Decimal(str(report["profit"])) == (expected_profit - Decimal(refunded["total"])).quantize(Decimal("0.01"))
