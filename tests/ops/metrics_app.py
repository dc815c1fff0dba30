"""Stand-in service for tests/ops when no real service module exists yet: /health and /metrics
with every series of shared/metrics.py, shared/dlq_watch.py and services/*/telemetry.py (one
labelled child each, so they are exposed)."""

from __future__ import annotations

from prometheus_client import REGISTRY, make_asgi_app

from services.analytics import telemetry as analytics
from services.connectors import telemetry as connectors
from services.gateway import telemetry as gateway
from services.ingest import telemetry as ingest
from shared import dlq_watch, metrics
from shared.service import Receive, Scope, Send, health


def _touch_every_series() -> None:
    metrics.MESSAGES_REDELIVERED.labels(queue="ops.test")
    metrics.MESSAGES_DEAD_LETTERED.labels(queue="ops.test.dlq")
    dlq_watch.DLQ_DEPTH.labels(queue="ops.test.dlq").set(0)
    gateway.HTTP_REQUESTS.labels(method="GET", route="/health", code="200").inc()
    gateway.HTTP_LATENCY.labels(method="GET", route="/health").observe(0.001)
    ingest.ROWS_INGESTED.labels(source="excel")
    ingest.ROWS_REJECTED.labels(source="excel")
    ingest.FILES_PROCESSED.labels(outcome="success")
    ingest.PARSE_SECONDS.observe(0.5)
    analytics.REPORT_RECOMPUTE_SECONDS.observe(0.05)
    analytics.REPORTS_FINISHED.labels(status="success")
    connectors.CONNECTOR_CALLS.labels(api="sweetclub", outcome="ok")
    connectors.CONNECTOR_CALL_SECONDS.labels(api="sweetclub").observe(0.1)
    connectors.SYNC_LAG_SECONDS.labels(api="sweetclub").set(0)
    connectors.SALES_SYNCED.labels(api="sweetclub")


_touch_every_series()
_metrics = make_asgi_app(REGISTRY)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/health":
        await health(scope, receive, send)
    else:
        await _metrics(scope, receive, send)
