"""Prometheus series shared by the services (names follow Prometheus conventions: units in the
name, `_total` for counters, bounded label values — never a report or user id)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_REDELIVERED = Counter(
    "saleswire_messages_redelivered_total",
    "Messages received again after a failed attempt, by consumer queue",
    ["queue"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "saleswire_messages_dead_lettered_total", "Messages moved to a dead-letter queue, by DLQ name", ["queue"]
)
DLQ_DEPTH = Gauge("saleswire_dlq_depth_messages", "Messages waiting in a dead-letter queue", ["queue"])

HTTP_REQUESTS = Counter("saleswire_http_requests_total", "HTTP requests served", ["method", "route", "code"])
HTTP_LATENCY = Histogram(
    "saleswire_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
READS_COALESCED = Counter(
    "saleswire_gateway_reads_coalesced_total",
    "Gateway reads answered by an identical read already in flight (no database round trip of their own)",
)
REQUESTS_COALESCED = Counter(
    "saleswire_gateway_requests_coalesced_total",
    "Gateway read requests answered with a copy of an identical request's answer in flight (no run of their own)",
)

ROWS_INGESTED = Counter("saleswire_rows_ingested_total", "Sale rows stored", ["source"])
ROWS_REJECTED = Counter("saleswire_rows_rejected_total", "Rows rejected by validation", ["source"])
FILES_PROCESSED = Counter("saleswire_files_processed_total", "Uploaded workbooks processed by ingest", ["outcome"])
PARSE_SECONDS = Histogram(
    "saleswire_parse_duration_seconds",
    "Time to parse and validate one workbook",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)

REPORT_RECOMPUTE_SECONDS = Histogram(
    "saleswire_report_recompute_duration_seconds",
    "Time to recompute one report's metrics",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
RECOMPUTES_SKIPPED = Counter(
    "saleswire_report_recomputes_skipped_total",
    "SalesIngested events that cost no recompute: covered (a later-started recompute saw their rows) "
    "or progress_spacing (a long sync's progress, while the last recompute is recent)",
    ["reason"],
)
REPORTS_FINISHED = Counter("saleswire_reports_finished_total", "Reports finished", ["status"])

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
