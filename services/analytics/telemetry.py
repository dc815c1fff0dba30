"""Prometheus series of the analytics process only (conventions as in `shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
