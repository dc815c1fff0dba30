"""Prometheus series of the connectors process only (conventions as in `shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CONNECTOR_CALLS = Counter("saleswire_connector_calls_total", "Calls to external APIs", ["api", "outcome"])
CONNECTOR_CALL_SECONDS = Histogram("saleswire_connector_call_duration_seconds", "External API call latency", ["api"])
SYNC_LAG_SECONDS = Gauge(
    "saleswire_sync_lag_seconds", "Seconds since the oldest connection of a kind was last synced", ["api"]
)
SALES_SYNCED = Counter("saleswire_sales_synced_total", "Sales pulled from external APIs", ["api"])
CONNECTOR_QUARANTINED = Counter(
    "saleswire_connector_quarantined_total",
    "External items that could not be read, kept aside with their raw payload, by API and stage",
    ["api", "stage"],
)
CONNECTOR_DETAIL_CALLS = Counter(
    "saleswire_connector_detail_calls_total", "Detail calls made to enrich new or changed sales", ["api"]
)
