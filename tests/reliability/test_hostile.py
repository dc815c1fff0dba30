"""Hostile and malformed workbooks through the running services: each gets a clear answer
(409/413/415, or 200 where the file is legitimately valid), in bounded time, and the ingest
process survives them all (same pid, /health 200, nothing dead-lettered).

Default: 60 files; `SALESWIRE_LONG_TESTS=1`: 1 000.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.infra import MongoServer
from tests.reliability.harness import LONG, dead_letter_depths, running_stack, service_pid, upload, wait_report
from tests.reliability.hostile import UPLOAD_LIMIT, Case, cases

COUNT = 1_000 if LONG else 60
PER_FILE_SECONDS = 90  # parse_timeout_seconds (60) plus the round trips


@pytest.fixture(scope="module")
def stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(
        mongo_server.url, rabbitmq, max_upload_bytes=UPLOAD_LIMIT, validation_wait_seconds=PER_FILE_SECONDS
    ) as s:
        yield s


def _send(stack: Stack, case: Case) -> tuple[Case, int, float, str]:
    started = time.monotonic()
    r = upload(stack, "hostile", case.content, name=case.name[:200], timeout=PER_FILE_SECONDS * 2)
    return case, r.status_code, time.monotonic() - started, r.text[:300]


def test_hostile_workbooks_are_refused_quickly_without_crashing_ingest(stack: Stack) -> None:
    ingest_pid = service_pid(stack, "ingest")
    results: list[tuple[Case, int, float, str]] = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        for result in pool.map(lambda c: _send(stack, c), cases(COUNT)):
            results.append(result)
            assert httpx.get(f"{stack.processes['ingest'].url}/health", timeout=5).status_code == 200

    by_outcome = Counter((c.name.split("#")[0].split("@")[0], code) for c, code, _, _ in results)
    times = [t for _, _, t, _ in results]
    print(
        f"\n{len(results)} hostile files: "
        + ", ".join(f"{n}→{code}×{k}" for (n, code), k in sorted(by_outcome.items()))
    )
    print(
        f"per-file time: median {statistics.median(times):.2f}s, max {max(times):.2f}s "
        f"({max(results, key=lambda r: r[2])[0].name})"
    )
    for c, code, t, _ in sorted(results, key=lambda r: -r[2])[:8]:
        print(f"  slowest: {c.name} → {code} in {t:.1f}s")
    wrong = [(c.name, code, body) for c, code, _, body in results if code not in c.allowed]
    assert wrong == [], wrong
    slow = [(c.name, round(t, 1)) for c, _, t, _ in results if t > PER_FILE_SECONDS]
    assert slow == [], slow
    assert service_pid(stack, "ingest") == ingest_pid and stack.processes["ingest"].proc.poll() is None  # type: ignore[union-attr]
    # Accepted files finish; refused ones left nothing behind; nothing went to a dead-letter queue.
    for case, code, _, body in results:
        if code == 200:
            import json

            report = wait_report(stack, "hostile", json.loads(body)["report_id"], timeout=60)
            assert report.get("status") in ("success", "failed"), (case.name, report)
    refused = [c.name[:200] for c, code, _, _ in results if code != 200]
    assert stack.db().reports.count_documents({"name": {"$in": refused}}) == 0
    assert dead_letter_depths(stack) == {}
