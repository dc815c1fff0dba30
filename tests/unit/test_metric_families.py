"""Each process's `/metrics` carries the Prometheus families that process measures, and no other
service's: the app is created in a fresh interpreter (as uvicorn would import it) and its
`/metrics` route is asked over ASGI, without start-up (no broker or database is needed)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.infra import ROOT

# Registered by shared/broker.py's consumer middleware, in every process that has a broker.
BROKER = {"saleswire_messages_redelivered", "saleswire_messages_dead_lettered"}
DLQ_WATCH = {"saleswire_dlq_depth_messages"}
EXPECTED = {
    "gateway": BROKER
    | {
        "saleswire_http_requests",
        "saleswire_http_request_duration_seconds",
        "saleswire_gateway_reads_coalesced",
        "saleswire_gateway_requests_coalesced",
    },
    "ingest": BROKER
    | DLQ_WATCH
    | {
        "saleswire_rows_ingested",
        "saleswire_rows_rejected",
        "saleswire_files_processed",
        "saleswire_parse_duration_seconds",
    },
    "analytics": BROKER
    | DLQ_WATCH
    | {
        "saleswire_report_recompute_duration_seconds",
        "saleswire_report_recomputes_skipped",
        "saleswire_reports_finished",
    },
    "connectors": BROKER
    | DLQ_WATCH
    | {
        "saleswire_connector_calls",
        "saleswire_connector_call_duration_seconds",
        "saleswire_sync_lag_seconds",
        "saleswire_sales_synced",
        "saleswire_connector_quarantined",
        "saleswire_connector_detail_calls",
    },
}

_SCRAPE = """
import asyncio, importlib, json, sys
import httpx
from prometheus_client.parser import text_string_to_metric_families

async def scrape() -> None:
    app = importlib.import_module(f"services.{sys.argv[1]}.main").app
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app") as client:
        answer = await client.get("/metrics")
    assert answer.status_code == 200, answer.status_code
    # An unlabelled histogram's `_created` sample parses as a family of its own: not a family.
    families = {f.name for f in text_string_to_metric_families(answer.text)}
    names = sorted(n for n in families if n.startswith("saleswire_") and not n.endswith("_created"))
    print(json.dumps(names))

asyncio.run(scrape())
"""


@pytest.mark.parametrize("service", sorted(EXPECTED))
def test_metrics_show_only_the_families_of_their_process(service: str) -> None:
    run = subprocess.run(
        [sys.executable, "-c", _SCRAPE, service],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    shown = set(json.loads(run.stdout.strip().splitlines()[-1]))
    assert shown == EXPECTED[service]
