"""A gateway SIGKILLed with an upload in flight no longer strands the upload's Idempotency-Key:
the client's retry with the same key, sent to another gateway, takes the dead request's lease
over once it has not been renewed for `idempotency_lease_seconds`, and answers within seconds
(it used to wait 300 s for a 409, then every retry did the same).

Two moments of death: while the body is still being received (nothing published: the retry
uploads its own body), and after the upload was handed to ingest (the retry goes on with that
very report: same report id). Either way: one report, its rows stored once, its metrics the
reference ones, and the key then answers what the retry answered.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.mongo import COLLECTIONS
from tests.e2e.conftest import Stack
from tests.infra import MongoServer, ServiceProcess, free_port, stored_rows
from tests.reliability.campaign import campaign_xlsx, make_rows, metrics_of, reference_metrics
from tests.reliability.harness import CHANNEL, XLSX, running_stack, wait_report

LEASE_SECONDS = 6.0
BUDGET = "1000"
BOUNDARY = "saleswire-lease-test"


@pytest.fixture(scope="module")
def stack(mongo_server: MongoServer, rabbitmq: str) -> Iterator[Stack]:
    with running_stack(
        mongo_server.url, rabbitmq, idempotency_beat_seconds=1.0, idempotency_lease_seconds=LEASE_SECONDS
    ) as s:
        yield s


def _gateway(stack: Stack, name: str) -> ServiceProcess:
    proc = ServiceProcess(name, "services.gateway.main:app", free_port(), stack.env, Path(tempfile.mkdtemp()))
    proc.start()
    proc.wait_ready(120)
    return proc


def _multipart(content: bytes) -> tuple[bytes, bytes]:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="campaign.xlsx"\r\n'
        f"Content-Type: {XLSX}\r\n\r\n"
    ).encode()
    return head, f"\r\n--{BOUNDARY}--\r\n".encode()


def _post(url: str, stack: Stack, key: str, body: Any, name: str, length: int | None = None) -> httpx.Response:
    headers = {
        **stack.headers("alice"),
        "Idempotency-Key": key,
        "Content-Type": f"multipart/form-data; boundary={BOUNDARY}",
    }
    if length is not None:
        headers["Content-Length"] = str(length)
    return httpx.post(
        f"{url}/sales/create",
        params={"channel_id": CHANNEL, "name": name, "budget": BUDGET},
        content=body,
        headers=headers,
        timeout=180,
    )


def _claim(stack: Stack, key: str) -> dict[str, Any] | None:
    claim: dict[str, Any] | None = stack.db()[COLLECTIONS.idempotency].find_one({"_id": {"$regex": f":{key}$"}})
    return claim


def _wait_claim(stack: Stack, key: str, field: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claim = _claim(stack, key)
        if claim is not None and claim.get(field) is not None:
            return claim
        time.sleep(0.05)
    raise AssertionError(f"the claim of {key} never got a {field}: {_claim(stack, key)}")


def _in_background(call: Any) -> threading.Thread:
    def run() -> None:
        with contextlib.suppress(httpx.HTTPError):  # the gateway it talks to is killed: expected
            call()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _check_one_exact_report(stack: Stack, report_id: str, rows: list[Any], name: str) -> None:
    db = stack.db()
    assert [r["_id"] for r in db[COLLECTIONS.reports].find({"name": name})] == [report_id]
    report = wait_report(stack, "alice", report_id)
    assert report.get("status") == "success", report
    assert metrics_of(report) == reference_metrics(rows, Decimal(BUDGET))
    stored = [int(r["row"]) for r in stored_rows(db, {"report_id": report_id})]
    assert sorted(stored) == sorted(set(stored)) and len(stored) == len(rows)


def test_a_retry_takes_over_the_key_of_a_gateway_killed_while_receiving_the_body(stack: Stack) -> None:
    rows = make_rows(200, seed=41)
    content = campaign_xlsx(rows)
    head, tail = _multipart(content)
    key, name = uuid.uuid4().hex, "killed-mid-body"
    doomed = _gateway(stack, "gateway-doomed-1")

    def slowly() -> Iterator[bytes]:
        yield head
        for i in range(0, len(content), 512):
            yield content[i : i + 512]
            time.sleep(0.1)
        yield tail

    sender = _in_background(lambda: _post(doomed.url, stack, key, slowly(), name, len(head) + len(content) + len(tail)))
    claim = _wait_claim(stack, key, "report_id")  # the dead request's report id, noted before the body
    time.sleep(0.5)
    assert claim.get("command") is None, "the body should still be arriving"
    doomed.kill()
    sender.join(30)

    started = time.monotonic()
    retry = _post(stack.gateway_url, stack, key, head + content + tail, name)
    took = time.monotonic() - started
    assert retry.status_code == 200, retry.text
    assert took < LEASE_SECONDS + 30, f"the retry took {took:.1f}s"
    report_id = retry.json()["report_id"]
    assert report_id != claim["report_id"]  # nothing had been handed to ingest: a new upload
    assert stack.db()[COLLECTIONS.reports].count_documents({"_id": claim["report_id"]}) == 0
    _check_one_exact_report(stack, report_id, rows, name)
    # The key now answers what the retry answered.
    again = _post(stack.gateway_url, stack, key, head + content + tail, name)
    assert again.status_code == 200 and again.json()["report_id"] == report_id
    print(f"\nretry after a kill mid-body answered in {took:.1f}s (lease {LEASE_SECONDS}s)")


def test_a_retry_goes_on_with_the_upload_a_killed_gateway_had_handed_to_ingest(stack: Stack) -> None:
    rows = make_rows(150, seed=42)
    content = campaign_xlsx(rows)
    head, tail = _multipart(content)
    key, name = uuid.uuid4().hex, "killed-awaiting-verdict"
    stack.processes["ingest"].stop()  # the upload then waits for its verdict: the gateway dies there
    doomed = _gateway(stack, "gateway-doomed-2")
    try:
        sender = _in_background(lambda: _post(doomed.url, stack, key, head + content + tail, name))
        claim = _wait_claim(stack, key, "command")
        doomed.kill()
        sender.join(30)
    finally:
        stack.processes["ingest"].start()
    stack.processes["ingest"].wait_ready(120)

    started = time.monotonic()
    retry = _post(stack.gateway_url, stack, key, head + content + tail, name)
    took = time.monotonic() - started
    assert retry.status_code == 200, retry.text
    assert took < LEASE_SECONDS + 60, f"the retry took {took:.1f}s"
    assert retry.json()["report_id"] == claim["report_id"]  # the very upload the dead request made
    _check_one_exact_report(stack, claim["report_id"], rows, name)
    again = _post(stack.gateway_url, stack, key, head + content + tail, name)
    assert again.status_code == 200 and again.json()["report_id"] == claim["report_id"]
    print(f"\nretry after a kill awaiting the verdict answered in {took:.1f}s (lease {LEASE_SECONDS}s)")
