"""Stand-in service for tests/ops when no real service module exists yet: /health and /metrics
with every series of shared/metrics.py (one labelled child each, so they are exposed)."""

from __future__ import annotations

from prometheus_client import REGISTRY, make_asgi_app

from shared import metrics
from shared.service import Receive, Scope, Send, health


def _touch_every_series() -> None:
    metrics.MESSAGES_REDELIVERED.labels(queue="ops.test")
    metrics.MESSAGES_DEAD_LETTERED.labels(queue="ops.test.dlq")
    metrics.DLQ_DEPTH.labels(queue="ops.test.dlq").set(0)
    metrics.HTTP_REQUESTS.labels(method="GET", route="/health", code="200").inc()
    metrics.HTTP_LATENCY.labels(method="GET", route="/health").observe(0.001)
    metrics.ROWS_INGESTED.labels(source="excel")
    metrics.ROWS_REJECTED.labels(source="excel")
    metrics.FILES_PROCESSED.labels(outcome="success")
    metrics.PARSE_SECONDS.observe(0.5)
    metrics.REPORT_RECOMPUTE_SECONDS.observe(0.05)
    metrics.REPORTS_FINISHED.labels(status="success")
    metrics.CONNECTOR_CALLS.labels(api="sweetclub", outcome="ok")
    metrics.CONNECTOR_CALL_SECONDS.labels(api="sweetclub").observe(0.1)
    metrics.SYNC_LAG_SECONDS.labels(api="sweetclub").set(0)
    metrics.SALES_SYNCED.labels(api="sweetclub")


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
