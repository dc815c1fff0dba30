"""What a seller's first sync and its re-polls cost, through the real services, on the emulators.

    .venv/bin/python -m bench.sync [--sales 50000] [--platforms sweetclub,eduzz,ofd] [--changed 100]
                                   [--cap-minutes 20] [--span-days 30]

Starts its own SecantusDB, the gateway, ingest, analytics and connectors services (their DEFAULT
settings: the connections are made with no options, so each gets the default rate budget, page
size and timeouts) on the local RabbitMQ under a throw-away namespace, and the three emulators
(`python -m deploy.sandbox`). Per platform, one after the other:

1. first sync of `--sales` sales (OFD: `--sales` receipts over `--span-days` days, read by day):
   seconds until the report's sales and profit equal the emulator's truth; until the sync's
   source is done; until enrichment ends (every sale's detail answered once, the source done);
   calls made per route against the minimum in the same run (the listing pages at the largest
   page the document allows, plus one detail call per sale);
2. an unchanged re-poll: its calls (target: listing pages alone, 0 detail calls);
3. a re-poll after `--changed` sales were refunded on the platform: its calls (target: listing
   pages + `--changed` detail calls) and the seconds until the report is exact again.

A phase that does not finish within `--cap-minutes` is reported with what it reached (and the
projection at its rate); the re-polls of a platform whose enrichment did not end are skipped,
since they would overlap it (`--until-final` ends the first sync's phase as soon as the report is
final and the listing read, for a large account whose enrichment cannot end in the run; its
enrichment then goes on behind the next platform's sync). At the default 10 requests/s, 50 000
details take ≈ 83 minutes: `--first-sync-rate R` gives the first sync's connection a budget of R
requests/s so that its enrichment ends within the run, then sets the connection back to the
defaults (no options) before the re-polls, which are then measured at default settings. The
machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import httpx

from tests.infra import ROOT, ensure_rabbitmq, free_port, rabbit_url
from tests.reliability.harness import CHANNEL, SecantusProcess, running_stack, upload, wait_report
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes

CREDENTIALS = {
    "sweetclub": {"username": "testapi@testapi.com", "password": "testapi@testapi.com"},
    "eduzz": {"token": "sandbox-eduzz-token"},
    "ofd": {"yandex_key": "sandbox-yandex-key", "ofd_key": "sandbox-ofd-key"},
}
LISTING = {
    "sweetclub": "GET /api/sale/list",
    "eduzz": "GET /orbita/v1/sales",
    "ofd": "POST /v1/docs/aggregations/sales",
}
DETAIL = {"sweetclub": "GET /api/sale/info", "eduzz": "GET /orbita/v1/sales/{id}", "ofd": ""}
# The largest page each document allows (SweetClub limit ≤ 1000, Eduzz per_page ≤ 25); OFD states
# no cap, so its minimum is counted at the emulator's default limit of 100 days.
MAX_PAGE = {"sweetclub": 1000, "eduzz": 25, "ofd": 100}
CURRENCY = {"sweetclub": "RUB", "eduzz": "BRL", "ofd": "RUB"}
CAMPAIGN_SALES, CAMPAIGN_PROFIT = 2, Decimal("500.5")  # what tests.workbooks.CAMPAIGN_ROWS adds
USER = "bench"


@dataclass
class Phase:
    name: str
    seconds_final: float | None = None  # the report's sales and profit equal the truth
    seconds_synced: float | None = None  # the source's sync is done
    seconds_enriched: float | None = None  # every detail answered (first sync), or calls settled
    listing_calls: int = 0
    detail_calls: int = 0
    other_calls: dict[str, int] = field(default_factory=dict)
    minimum_listing: int = 0
    minimum_detail: int = 0
    note: str = ""


@dataclass
class Expected:
    sales: int
    amount: Decimal  # the platform's own money in the report (its paid sales, OFD's revenue)
    details: int  # sales that need a detail call


class Sandbox:
    def __init__(self) -> None:
        self.ports = {name: free_port() for name in CREDENTIALS}
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, kind: str) -> str:
        return f"http://127.0.0.1:{self.ports[kind]}"

    def control(self, kind: str, path: str, body: object = None, method: str = "POST") -> Any:
        answer = httpx.request(method, f"{self.url(kind)}/_sandbox/{path}", json=body, timeout=120)
        answer.raise_for_status()
        return answer.json()

    @contextmanager
    def running(self) -> Iterator[Sandbox]:
        args = [sys.executable, "-m", "deploy.sandbox", "--size", "0"]
        args += [a for name, port in self.ports.items() for a in (f"--{name}", str(port))]
        self.proc = subprocess.Popen(args, cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            for kind in self.ports:
                while True:
                    try:
                        httpx.get(f"{self.url(kind)}/_sandbox/stats", timeout=2).raise_for_status()
                        break
                    except httpx.HTTPError:
                        if time.monotonic() > deadline or self.proc.poll() is not None:
                            raise RuntimeError("the sandbox did not start") from None
                        time.sleep(0.2)
            yield self
        finally:
            self.proc.terminate()
            self.proc.wait(20)


def expected_of(kind: str, truth: Any) -> Expected:
    if kind == "ofd":
        revenue = sum((Decimal(d["revenue"]) for d in truth["days"].values()), Decimal(0))
        return Expected(CAMPAIGN_SALES, revenue, 0)
    paid = [s for s in truth["sales"] if s["status"] == ("1" if kind == "sweetclub" else "paid")]
    amount = sum((Decimal(s["total"]) for s in paid), Decimal(0))
    return Expected(CAMPAIGN_SALES + len(paid), amount, len(truth["sales"]))


def report_is(report: dict[str, Any], kind: str, want: Expected) -> bool:
    """The report's sales and the platform's money equal the truth (per currency where the report
    keeps money per currency, SPEC §4.1; else its one `profit`)."""
    if report.get("sales") != want.sales:
        return False
    by_currency = report.get("profit_by_currency")
    if isinstance(by_currency, dict):  # the campaign workbook's money is in the report's RUB
        got = by_currency.get(CURRENCY[kind], 0)
        profit = want.amount + (CAMPAIGN_PROFIT if CURRENCY[kind] == "RUB" else 0)
    else:
        got, profit = report.get("profit", 0), want.amount + CAMPAIGN_PROFIT
    return Decimal(str(got)).quantize(Decimal("0.01")) == profit.quantize(Decimal("0.01"))


class Run:
    """One platform's connection on the stack, and the clocks and counters of its phases."""

    def __init__(self, stack: Any, sandbox: Sandbox, kind: str, cap: float, *, until_final: bool = False) -> None:
        self.stack, self.sandbox, self.kind, self.cap = stack, sandbox, kind, cap
        self.until_final = until_final
        self.h = stack.headers(USER)
        self.base = stack.gateway_url
        self.slow_polls = 0

    def report(self) -> dict[str, Any]:
        answer = self.patient("POST", "/sales/analytic/report", json={"report_id": self.report_id})
        return answer.json() if answer.status_code == 200 else {}

    def source(self) -> dict[str, Any]:
        answer = self.patient("GET", f"/connections/{self.conn_id}/sources/{self.source_id}")
        return answer.json()  # type: ignore[no-any-return]

    def patient(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A poll that a saturated machine answers late is asked again (and counted), not fatal."""
        while True:
            try:
                return httpx.request(method, f"{self.base}{path}", headers=self.h, timeout=30, **kwargs)
            except httpx.TimeoutException:
                self.slow_polls += 1

    def stats(self) -> dict[str, Any]:
        return self.sandbox.control(self.kind, "stats", method="GET")  # type: ignore[no-any-return]

    def set_options(self, options: dict[str, Any]) -> None:
        answer = httpx.patch(
            f"{self.base}/connections/{self.conn_id}", headers=self.h, json={"options": options}, timeout=30
        )
        assert answer.status_code == 200, answer.text

    def connect(self, options: dict[str, Any]) -> None:
        campaign = upload(self.stack, USER, workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS), name=f"bench-{self.kind}")
        self.report_id = wait_report(self.stack, USER, campaign.json()["report_id"])["id"]
        conn = httpx.post(f"{self.base}/connections", headers=self.h, timeout=30, json={
            "kind": self.kind, "channel_id": CHANNEL, "base_url": self.sandbox.url(self.kind),
            "credentials": CREDENTIALS[self.kind], "poll_interval_seconds": 0, "options": options}).json()  # fmt: skip
        self.conn_id = conn["id"]
        period = {"report_id": self.report_id, "period_start": "2024-01-01", "period_end": "2024-12-31"}
        self.source_id = httpx.post(
            f"{self.base}/connections/{self.conn_id}/sources", headers=self.h, json=period, timeout=30
        ).json()["id"]

    def sync(self) -> float:
        self.sandbox.control(self.kind, "stats", method="DELETE")
        started = time.monotonic()
        answer = httpx.post(
            f"{self.base}/connections/{self.conn_id}/sync",
            headers=self.h,
            json={"source_report_id": self.source_id},
            timeout=30,
        )
        assert answer.status_code == 202, answer.text
        return started

    def measure(self, phase: Phase, want: Expected, *, first: bool) -> Phase:
        """Poll the report, the source and the emulator's counters until the phase is over."""
        started = self.sync()
        last_calls, quiet_since, shown = -1, time.monotonic(), 0.0
        while True:
            now = time.monotonic() - started
            report = self.report()
            if phase.seconds_final is None and report_is(report, self.kind, want):
                phase.seconds_final = now
            source = self.source()
            stats = self.stats()
            calls: dict[str, int] = stats["calls"]
            self.count(phase, calls)
            done = source["status"] in ("success", "failed") and phase.listing_calls > 0
            if done and phase.seconds_synced is None:
                phase.seconds_synced = now
                phase.note = source["status"] if source["status"] != "success" else ""
            total = sum(calls.values())
            if total != last_calls:
                last_calls, quiet_since = total, time.monotonic()
            detailed = stats["answers"].get(DETAIL[self.kind], {}).get("200", 0) if DETAIL[self.kind] else 0
            progress = source.get("progress") or {}
            if "phase" in progress:  # the service says when enrichment is over
                settled = progress.get("state") != "running" and time.monotonic() - quiet_since > 1
            else:  # a service without enrichment progress: every detail answered, or calls settled
                settled = (first and detailed >= want.details) or (time.monotonic() - quiet_since > 3)
            if phase.seconds_enriched is None and done and settled:
                phase.seconds_enriched = now if first or "phase" in progress else quiet_since - started
            if now - shown >= 60:
                shown = now
                print(
                    f"  {self.kind} {phase.name} at {now:.0f}s: report {report.get('sales')}/{want.sales} sales, "
                    f"source {source['status']}, listing {phase.listing_calls}, details answered {detailed}, "
                    f"progress { ({k: v for k, v in progress.items() if not k.endswith('_at')}) }",
                    flush=True,
                )
            if phase.seconds_final is not None and phase.seconds_enriched is not None:
                return phase
            if first and self.until_final and phase.seconds_final is not None and phase.seconds_synced is not None:
                rate = detailed / now if now else 0
                phase.note = f"enrichment not awaited (--until-final): {detailed} details at {rate:.1f}/s so far"
                return phase
            if source["status"] == "failed" and time.monotonic() - quiet_since > 3:
                phase.note = f"sync failed: {source.get('error_message')}; report {self.report().get('sales')} sales"
                return phase
            if now > self.cap:
                needed = want.details if first else phase.minimum_detail
                rate = detailed / now if now else 0
                projected = f"projected at {now + (needed - detailed) / rate:.0f}s" if rate else "not moving"
                phase.note = (
                    f"cap {self.cap:.0f}s reached: source {source['status']}, {detailed}/{needed} details "
                    f"at {rate:.1f}/s (enrichment {projected}); report "
                    f"{'final' if phase.seconds_final is not None else 'not final'} ({report.get('sales')}/{want.sales} sales)"
                )
                return phase
            time.sleep(1)

    def count(self, phase: Phase, calls: dict[str, int]) -> None:
        phase.listing_calls = calls.get(LISTING[self.kind], 0)
        phase.detail_calls = calls.get(DETAIL[self.kind], 0) if DETAIL[self.kind] else 0
        phase.other_calls = {k: v for k, v in calls.items() if k not in (LISTING[self.kind], DETAIL[self.kind])}


def bench_platform(stack: Any, sandbox: Sandbox, kind: str, args: argparse.Namespace) -> list[Phase]:
    reset = {"size": args.sales, "seed": 17, "span_days": args.span_days, "refund_share": 0.1}
    sandbox.control(kind, "reset", reset)
    truth = sandbox.control(kind, "truth", method="GET")
    want = expected_of(kind, truth)
    items = len(truth["days"]) if kind == "ofd" else len(truth["sales"])
    run = Run(stack, sandbox, kind, args.cap_minutes * 60, until_final=args.until_final)
    rate = args.first_sync_rate
    run.connect({"rate_per_second": rate, "burst": max(10, int(rate) // 10)} if rate else {})
    pages = math.ceil(items / MAX_PAGE[kind])
    name = f"first sync{f' at {rate:g}/s' if rate else ''}"
    first = run.measure(Phase(name, minimum_listing=pages, minimum_detail=want.details), want, first=True)
    phases = [first]
    if first.seconds_enriched is None or first.seconds_final is None:
        return phases
    if rate:
        run.set_options({})  # the re-polls at default settings
    phases.append(run.measure(Phase("unchanged re-poll", minimum_listing=pages), want, first=False))
    # Changed within the last week of the data: what a 7-day lookback (the default) is there to see.
    changed = sandbox.control(kind, "change", {"count": args.changed, "seed": 5, "since": last_week(kind, truth)})
    want = expected_of(kind, sandbox.control(kind, "truth", method="GET"))
    extra = changed["changed"] if kind != "ofd" else 0
    phase = Phase(f"re-poll after {changed['changed']} changed", minimum_listing=pages, minimum_detail=extra)
    phases.append(run.measure(phase, want, first=False))
    return phases


def last_week(kind: str, truth: Any) -> str:
    if kind == "ofd":
        last = max(truth["days"])
    else:
        last = max(s["date_added" if kind == "sweetclub" else "created_at"] for s in truth["sales"])[:10]
    return (date.fromisoformat(last) - timedelta(days=6)).isoformat()


def fmt(seconds: float | None) -> str:
    return "—" if seconds is None else f"{seconds:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sales", type=int, default=50_000)
    parser.add_argument("--platforms", default="sweetclub,eduzz,ofd")
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--cap-minutes", type=float, default=20)
    parser.add_argument("--span-days", type=int, default=30)
    parser.add_argument("--first-sync-rate", type=float, default=0, help="requests/s for the first sync only")
    parser.add_argument(
        "--until-final",
        action="store_true",
        help="end the first sync's phase once the report is final and the listing read (no re-polls)",
    )
    args = parser.parse_args()
    ensure_rabbitmq()
    load_before = os.getloadavg()
    results: dict[str, list[Phase]] = {}
    mongo = SecantusProcess()
    mongo.start()
    try:
        with Sandbox().running() as sandbox, running_stack(mongo.url, rabbit_url(), connectors=True) as stack:
            for kind in args.platforms.split(","):
                results[kind] = bench_platform(stack, sandbox, kind, args)
                for p in results[kind]:
                    print(
                        f"{kind:9} {p.name:26} final {fmt(p.seconds_final):>7}s  synced {fmt(p.seconds_synced):>7}s  "
                        f"enriched {fmt(p.seconds_enriched):>7}s  listing {p.listing_calls} (min {p.minimum_listing})  "
                        f"detail {p.detail_calls} (min {p.minimum_detail})  other {p.other_calls} {p.note}",
                        flush=True,
                    )
    finally:
        mongo.stop()
        mongo.remove()
    load_after = os.getloadavg()
    print(f"load average (1/5/15 min) before {load_before}, after {load_after}")
    print(json.dumps({k: [asdict(p) for p in v] for k, v in results.items()}, default=str))


if __name__ == "__main__":
    main()
