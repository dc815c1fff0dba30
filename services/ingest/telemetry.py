"""Prometheus series of the ingest process only (conventions as in `shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

ROWS_INGESTED = Counter("saleswire_rows_ingested_total", "Sale rows stored", ["source"])
ROWS_REJECTED = Counter("saleswire_rows_rejected_total", "Rows rejected by validation", ["source"])
FILES_PROCESSED = Counter("saleswire_files_processed_total", "Uploaded workbooks processed by ingest", ["outcome"])
PARSE_SECONDS = Histogram(
    "saleswire_parse_duration_seconds",
    "Time to parse and validate one workbook",
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
)
