"""What the connector reliability proofs share: a whole stack with the connectors service, a
SweetClub/Eduzz connection made over HTTP, waits on commands, sources and reports, and the rows
stored for a source read straight from the database."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, TypeVar

import httpx
from pymongo import MongoClient

from shared.sale_chunks import rows_pipeline
from tests.e2e.conftest import Stack
from tests.reliability.harness import CHANNEL, upload, wait_report
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes

CREDENTIALS = {
    "sweetclub": {"username": "testapi@testapi.com", "password": "testapi@testapi.com"},
    "eduzz": {"token": "sandbox-eduzz-token"},
}
CURRENCY = {"sweetclub": "RUB", "eduzz": "BRL"}
CAMPAIGN_SALES, CAMPAIGN_PROFIT = 2, Decimal("500.5")  # what tests.workbooks.CAMPAIGN_ROWS adds
# Fast enough for a test, otherwise the service's defaults; a 2 s HTTP timeout so that a held
# answer (`commit_timeout`, 3 s) times out.
TUNING = {
    "SALESWIRE_CONNECTORS_LEASE_SECONDS": "4",
    "SALESWIRE_CONNECTORS_TICK_SECONDS": "0.3",
    "SALESWIRE_CONNECTORS_SCHEDULE_SECONDS": "0.3",
    "SALESWIRE_CONNECTORS_HTTP_TIMEOUT_SECONDS": "2",
    "SALESWIRE_CONNECTORS_RETRY_BASE_DELAY_SECONDS": "0.05",
    "SALESWIRE_CONNECTORS_RETRY_MAX_DELAY_SECONDS": "0.5",
    "SALESWIRE_CONNECTORS_PUBLISH_EVERY_SECONDS": "0.5",
}
T = TypeVar("T")


def until(check: Callable[[], T | None], timeout: float, what: str, every: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {value!r})")
        time.sleep(every)


class Seller:
    """One user with a report (a small campaign workbook) and a platform connection attached to it."""

    def __init__(self, stack: Stack, user: str, kind: str, base_url: str, options: dict[str, Any] | None = None):
        self.stack, self.user, self.kind = stack, user, kind
        self.h = stack.headers(user)
        self.base = stack.gateway_url
        campaign = upload(stack, user, workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS), name=f"rel-{kind}")
        self.report_id = wait_report(stack, user, campaign.json()["report_id"])["id"]
        conn = httpx.post(f"{self.base}/connections", headers=self.h, timeout=30, json={
            "kind": kind, "channel_id": CHANNEL, "base_url": base_url, "credentials": CREDENTIALS[kind],
            "poll_interval_seconds": 0, "options": options or {}}).json()  # fmt: skip
        self.conn_id: str = conn["id"]
        period = {"report_id": self.report_id, "period_start": "2024-01-01", "period_end": "2035-12-31"}
        self.source_id: str = httpx.post(
            f"{self.base}/connections/{self.conn_id}/sources", headers=self.h, json=period, timeout=30
        ).json()["id"]

    def sync(self) -> None:
        answer = httpx.post(
            f"{self.base}/connections/{self.conn_id}/sync",
            headers=self.h,
            json={"source_report_id": self.source_id},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text

    def source(self) -> dict[str, Any]:
        url = f"{self.base}/connections/{self.conn_id}/sources/{self.source_id}"
        return httpx.get(url, headers=self.h, timeout=30).json()  # type: ignore[no-any-return]

    def report(self) -> dict[str, Any]:
        answer = httpx.post(
            f"{self.base}/sales/analytic/report", json={"report_id": self.report_id}, headers=self.h, timeout=30
        )
        return answer.json() if answer.status_code == 200 else {}

    def command(self, path: str, body: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
        """A SweetClub command through the gateway, followed to its end."""
        answer = httpx.post(f"{self.base}/connections/{self.conn_id}/{path}", headers=self.h, json=body, timeout=60)
        assert answer.status_code in (200, 202), answer.text
        out: dict[str, Any] = answer.json()
        url = f"{self.base}/connections/{self.conn_id}/commands/{out['request_id']}"

        def ended() -> dict[str, Any] | None:
            doc: dict[str, Any] = httpx.get(url, headers=self.h, timeout=30).json()
            return doc if doc["state"] not in ("queued", "running") else None

        return out if out["state"] not in ("queued", "running") else until(ended, timeout, f"command {path}")

    def stored_rows(self) -> list[dict[str, Any]]:
        with MongoClient(self.stack.settings.mongo_url, tz_aware=True) as client:
            sales = client[self.stack.settings.mongo_db]["sales"]
            return list(sales.aggregate(rows_pipeline({"source_report_id": self.source_id})))


def counted(kind: str, truth: Any) -> tuple[int, Decimal]:
    """The sales the platform's truth puts in a report, and their money."""
    paid = [s for s in truth["sales"] if s["status"] == ("1" if kind == "sweetclub" else "paid")]
    return len(paid), sum((Decimal(s["total"]) for s in paid), Decimal(0))


def report_exact(report: dict[str, Any], kind: str, truth: Any) -> bool:
    """Sales and money equal the truth plus the campaign (per currency where the report keeps
    money per currency, SPEC §4.1; else in its one `profit`)."""
    sales, amount = counted(kind, truth)
    if report.get("sales") != CAMPAIGN_SALES + sales:
        return False
    by_currency = report.get("profit_by_currency")
    if isinstance(by_currency, dict):
        got = by_currency.get(CURRENCY[kind], 0)
        want = amount + (CAMPAIGN_PROFIT if CURRENCY[kind] == "RUB" else 0)
    else:
        got, want = report.get("profit", 0), amount + CAMPAIGN_PROFIT
    return Decimal(str(got)).quantize(Decimal("0.01")) == want.quantize(Decimal("0.01"))
