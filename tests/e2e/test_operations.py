"""Operations surface of the running services: AsyncAPI, health/readiness, metrics, and one
correlation id from the HTTP request through every service's logs."""

from __future__ import annotations

import json
import time
import uuid

import httpx

from tests.e2e.conftest import Stack
from tests.e2e.test_upload_report import upload, wait_report
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes


def test_asyncapi_documents_the_public_sale_recorded_event(stack: Stack) -> None:
    doc = httpx.get(f"{stack.processes['ingest'].url}/asyncapi.json", timeout=10)
    if doc.status_code != 200:
        doc = httpx.get(f"{stack.processes['ingest'].url}/asyncapi", params={"format": "json"}, timeout=10)
    text = doc.text
    assert doc.status_code == 200
    assert "SaleRecorded" in text and "external_id" in text and "UploadExcel" in text


def test_every_service_is_alive_ready_and_exposes_metrics(stack: Stack) -> None:
    for name, proc in stack.processes.items():
        assert httpx.get(f"{proc.url}/health").json() == {"status": "alive"}, name
        ready = httpx.get(f"{proc.url}/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True, name
        metrics = httpx.get(f"{proc.url}/metrics").text
        assert "saleswire_" in metrics, name


def test_one_correlation_id_follows_an_upload_through_every_service(stack: Stack) -> None:
    cid = f"test-{uuid.uuid4().hex}"
    r = upload(stack, "carol", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS), headers={"X-Correlation-ID": cid})
    assert r.status_code == 200 and r.headers["x-correlation-id"] == cid
    assert wait_report(stack, "carol", r.json()["report_id"])["status"] == "success"
    time.sleep(0.5)
    for name in ("gateway", "ingest", "analytics"):
        lines = [
            json.loads(line)
            for line in stack.processes[name].log_path.read_text().splitlines()
            if line.startswith("{") and cid in line
        ]
        assert lines, f"no log line of {name} carries the correlation id"
        assert all(line["correlation_id"] == cid for line in lines)


def test_http_metrics_use_route_templates_not_raw_paths(stack: Stack) -> None:
    httpx.get(
        f"{stack.gateway_url}/sales/analytic/-100/some-id/sales",
        params={"status": "sale"},
        headers=stack.headers("alice"),
    )
    text = httpx.get(f"{stack.gateway_url}/metrics").text
    assert 'route="/sales/analytic/{channel_id}/{source_report_id}/sales"' in text
    assert "some-id" not in text
