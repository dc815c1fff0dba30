"""Infrastructure outages while uploads run.

- Database: our own SecantusDB on a fixed port is stopped for a few seconds mid-upload and started
  again over the same storage. Every service's /ready turns 503 and back to 200; nothing is lost.
- Broker: our own second RabbitMQ node (never the shared one) is stopped while clients upload
  and started again. Every upload that got 200 ends in a finished report with all its rows;
  uploads attempted while it is down get 503; recovery time is printed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.infra import stored_rows
from tests.reliability.campaign import campaign_xlsx, make_rows, metrics_of, reference_metrics
from tests.reliability.harness import (
    RabbitNode,
    SecantusProcess,
    dead_letter_depths,
    ready_status,
    running_stack,
    upload,
    wait_report,
)

DB_DOWN_SECONDS = 5
BROKER_DOWN_SECONDS = 6


def _wait_all(urls: list[str], status: int, timeout: float) -> float:
    """Seconds until every /ready answers `status`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if all(ready_status(u) == status for u in urls):
            return time.monotonic() - started
        time.sleep(0.1)
    raise AssertionError(f"/ready did not turn {status} within {timeout}s: {[ready_status(u) for u in urls]}")


@pytest.fixture
def db_stack(rabbitmq: str) -> Iterator[tuple[Stack, SecantusProcess]]:
    mongo = SecantusProcess()
    mongo.start()
    try:
        with running_stack(mongo.url, rabbitmq) as stack:
            yield stack, mongo
    finally:
        mongo.remove()


def test_database_stop_mid_run_loses_nothing(db_stack: tuple[Stack, SecantusProcess]) -> None:
    stack, mongo = db_stack
    urls = [p.url for p in stack.processes.values()]
    stack.token("alice")  # issued while the database is up
    rows = make_rows(6_000, seed=11)
    budget = Decimal(5000)
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(upload, stack, "alice", campaign_xlsx(rows), budget=str(budget), name="db-outage")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and stack.db().source_reports.count_documents({"status": "processing"}) == 0:
            time.sleep(0.02)
        stop_seconds = mongo.stop()
        not_ready = _wait_all(urls, 503, 30)
        time.sleep(DB_DOWN_SECONDS)
        start_seconds = mongo.start()
        ready_again = _wait_all(urls, 200, 60)
        response = future.result(timeout=300)
    print(
        f"\nDB stop took {stop_seconds:.1f}s; every /ready 503 {not_ready:.1f}s after; down {DB_DOWN_SECONDS}s; "
        f"server back in {start_seconds:.1f}s; every /ready 200 {ready_again:.1f}s later; "
        f"upload answered {response.status_code}"
    )
    # The upload in flight must not be lost: either it was accepted (200) and its report
    # completes, or it was refused (503) and then nothing of it was kept.
    assert response.status_code in (200, 503), (
        f"{response.status_code}: {response.text}; reports in db: {list(stack.db().reports.find({'name': 'db-outage'}, {'status': 1}))}"
    )
    if response.status_code == 200:
        report = wait_report(stack, "alice", response.json()["report_id"], timeout=180)
        assert report.get("status") == "success", report
        assert metrics_of(report) == reference_metrics(rows, budget)
        assert len(stored_rows(stack.db(), {"report_id": report["id"]})) == len(rows)
    # And the system works normally afterwards.
    after = make_rows(500, seed=12)
    r = upload(stack, "alice", campaign_xlsx(after), name="after-db-outage")
    assert r.status_code == 200, r.text
    report = wait_report(stack, "alice", r.json()["report_id"])
    assert report.get("status") == "success" and metrics_of(report) == reference_metrics(after, Decimal(1000))
    assert dead_letter_depths(stack) == {}


@dataclass
class Attempt:
    started: float
    finished: float
    status: int
    report_id: str | None
    rows: int


@pytest.fixture
def broker_stack(mongo_server: object) -> Iterator[tuple[Stack, RabbitNode]]:
    from tests.infra import MongoServer

    assert isinstance(mongo_server, MongoServer)
    node = RabbitNode()
    try:
        node.start()
        with running_stack(mongo_server.url, node.url) as stack:
            yield stack, node
    finally:
        node.remove()


def test_broker_restart_while_uploading(broker_stack: tuple[Stack, RabbitNode]) -> None:
    stack, node = broker_stack
    stack.token("alice")
    files = {n: campaign_xlsx(make_rows(n, seed=n)) for n in (40, 60, 80)}
    attempts: list[Attempt] = []
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()

    def client(i: int) -> None:
        k = 0
        while not stop.is_set():
            n = (40, 60, 80)[(i + k) % 3]
            k += 1
            started = time.monotonic() - t0
            try:
                r = upload(stack, "alice", files[n], name=f"b-{i}-{k}", timeout=120)
                status, rid = r.status_code, (r.json().get("report_id") if r.status_code == 200 else None)
            except httpx.HTTPError:
                status, rid = 0, None
            with lock:
                attempts.append(Attempt(started, time.monotonic() - t0, status, rid, n))
            time.sleep(0.05)

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(3)]
    for t in threads:
        t.start()
    time.sleep(3)
    node.stop()
    # "Down" starts when the stop has returned: `rabbitmqctl stop` takes up to a second, and an
    # upload that started while the node was still serving may rightly be accepted.
    down_at = time.monotonic() - t0
    # Fresh uploads while it is down (the looping clients may all be waiting on an earlier one).
    probes = []
    for n in (40, 60):
        started = time.monotonic() - t0
        r = upload(stack, "alice", files[n], name=f"probe-{n}", timeout=60)
        probes.append(r.status_code)
        with lock:
            attempts.append(
                Attempt(
                    started,
                    time.monotonic() - t0,
                    r.status_code,
                    r.json().get("report_id") if r.status_code == 200 else None,
                    n,
                )
            )
    time.sleep(max(0.0, BROKER_DOWN_SECONDS - (time.monotonic() - t0 - down_at)))
    up_at = time.monotonic() - t0
    node.start()
    listening_at = time.monotonic() - t0
    ready_after = _wait_all([p.url for p in stack.processes.values()], 200, 90)
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(180)

    ok = [a for a in attempts if a.status == 200]
    first_ok_after = min((a.finished for a in ok if a.started >= listening_at), default=float("nan"))
    during = [a for a in attempts if a.started > down_at and a.finished < up_at]
    print(
        f"\n{len(attempts)} uploads: "
        + ", ".join(f"{s}×{sum(a.status == s for a in attempts)}" for s in sorted({a.status for a in attempts}))
        + f"; broker down at {down_at:.1f}s for {up_at - down_at:.1f}s, listening again {listening_at - up_at:.1f}s "
        f"after start; all /ready 200 {ready_after:.1f}s later; first 200 upload started after restart "
        f"finished at +{first_ok_after - listening_at:.1f}s"
    )
    assert {a.status for a in attempts} <= {200, 503}, [
        (a.status, a.started) for a in attempts if a.status not in (200, 503)
    ]
    assert probes == [503, 503], probes
    assert all(a.status == 503 for a in during), [(a.status, a.started) for a in during]
    assert any(a.started >= listening_at for a in ok), "no upload succeeded after the broker came back"
    db = stack.db()
    for a in ok:
        assert a.report_id is not None
        report = wait_report(stack, "alice", a.report_id, timeout=120)
        assert report.get("status") == "success", (a, report)
        assert len(stored_rows(db, {"report_id": a.report_id})) == a.rows
    # 503 uploads left nothing behind.
    assert db.reports.count_documents({}) == len(ok)
