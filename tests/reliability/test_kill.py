"""SIGKILL ingest or analytics at random moments while they work on a message, restart them, and
check that every report still ends with the reference metrics and every row stored exactly once.

Default: 3 cycles; `SALESWIRE_LONG_TESTS=1`: 20 cycles.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import pytest

from tests.e2e.conftest import Stack
from tests.infra import MongoServer, stored_rows
from tests.reliability.campaign import (
    HEADERS,
    campaign_xlsx,
    make_rows,
    metrics_of,
    reference_metrics,
    sheet_xml,
    xlsx_parts,
)
from tests.reliability.harness import (
    LONG,
    dead_letter_depths,
    running_stack,
    service_pid,
    upload,
    wait_report,
)

CYCLES = 20 if LONG else 3
ROWS = 10_000


@pytest.fixture(scope="module")
def stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(mongo_server.url, rabbitmq, max_upload_bytes=150 * 1024 * 1024) as s:
        yield s


def _source_status(stack: Stack, report_id: str) -> str | None:
    doc = stack.db().source_reports.find_one({"report_id": report_id}, {"status": 1})
    return None if doc is None else str(doc["status"])


def _wait_for_report_id(stack: Stack, name: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        doc = stack.db().reports.find_one({"name": name}, {"_id": 1})
        if doc is not None:
            return str(doc["_id"])
        time.sleep(0.02)
    raise AssertionError(f"report {name} never appeared")


def _kill_moment(stack: Stack, victim: str, report_id: str, rnd: random.Random) -> str:
    """Waits until the victim has the message in hand, then a random extra moment; returns the
    source report's state at the time of the kill."""
    wanted = {"ingest": {"processing", "storing"}, "analytics": {"ingested"}}[victim]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = _source_status(stack, report_id)
        if status in wanted or status == "ingested":
            break
        time.sleep(0.01)
    # Ingest parses and stores these rows in about half a second since rows are packed into
    # chunks, so the extra moment stays within that; a later kill would find the work done.
    time.sleep(rnd.uniform(0, 0.5) if victim == "ingest" else rnd.uniform(0, 0.15))
    return str(_source_status(stack, report_id))


def test_sigkill_mid_message_loses_and_duplicates_nothing(stack: Stack) -> None:
    rnd = random.Random(20261122)
    figures: list[str] = []
    db = stack.db()
    with ThreadPoolExecutor(max_workers=1) as pool:
        for cycle in range(CYCLES):
            victim = ["ingest", "analytics"][cycle % 2]
            rows = make_rows(ROWS, seed=cycle)
            budget = Decimal(rnd.randrange(1_000, 100_000))
            name = f"kill-{cycle}"
            started = time.monotonic()
            future = pool.submit(upload, stack, "alice", campaign_xlsx(rows), budget=str(budget), name=name)
            report_id = _wait_for_report_id(stack, name)
            state = _kill_moment(stack, victim, report_id, rnd)
            killed_at = time.monotonic() - started
            stack.restart(victim, kill=True)
            response = future.result(timeout=240)
            assert response.status_code == 200, response.text
            assert response.json()["report_id"] == report_id
            report = wait_report(stack, "alice", report_id, timeout=180)
            elapsed = time.monotonic() - started
            assert report.get("status") == "success", report
            assert metrics_of(report) == reference_metrics(rows, budget)
            stored = stored_rows(db, {"report_id": report_id})
            assert len(stored) == len(rows)
            assert len({r["row"] for r in stored}) == len(rows)
            [source] = report["source_reports"]
            assert source["rows"] == len(rows)
            figures.append(
                f"cycle {cycle}: killed {victim} at {killed_at:.2f}s (source {state}), report done in {elapsed:.1f}s"
            )
    print("\n" + "\n".join(figures))
    assert dead_letter_depths(stack) == {}, "messages were dead-lettered"


def _children(pid: int) -> list[int]:
    kids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            kids.append(int(entry.name))
    return kids


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _cpu_seconds(pid: int) -> float:
    try:
        fields = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_killing_ingest_mid_parse_leaves_no_orphaned_parser(stack: Stack) -> None:
    """The parser runs in a child process; when ingest dies the child must die with it, not keep
    parsing (up to parse_timeout_seconds, under parse_memory_bytes) as an orphan.

    The file has a bad date in every row, so it is read to the end and then rejected (409):
    nothing is stored, which keeps the test short."""
    bad = [[*r.cells()[:7], "31.02.2024", None, None] for r in make_rows(150_000, seed=99)]
    content = xlsx_parts(sheet_xml(HEADERS, bad))
    ingest_pid = service_pid(stack, "ingest")
    with ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(upload, stack, "alice", content, name="orphan")
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and not workers:
            workers = [p for p in _children(ingest_pid) if _alive(p)]
            time.sleep(0.01)
        assert workers, "the parse worker never started"
        # Let it get well into parsing (its job read, the workbook being read).
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            if max(_cpu_seconds(p) for p in workers) >= 1.0:
                break
            time.sleep(0.02)
        assert any(_alive(p) for p in workers), "the worker finished before it could be interrupted"
        os.kill(ingest_pid, signal.SIGKILL)
        time.sleep(1.0)
        orphans = [p for p in workers if _alive(p)]
        for pid in orphans:  # clean up what the product left behind
            os.kill(pid, signal.SIGKILL)
        stack.restart("ingest", kill=True)
        response = future.result(timeout=300)
    assert response.status_code == 409, response.text
    assert orphans == [], f"parse workers {orphans} outlived the SIGKILLed ingest process"
