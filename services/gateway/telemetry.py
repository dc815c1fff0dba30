"""Prometheus series of the gateway process only (conventions as in `shared.metrics`)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
