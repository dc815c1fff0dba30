"""Prometheus series every process with a broker registers: redeliveries and dead letters, counted
by the consumer middleware of `shared.broker`. Names follow Prometheus conventions: units in the
name, `_total` for counters, bounded label values — never a report or user id.

Each service's own series live in its package (`services/<name>/telemetry.py`), so a process's
`/metrics` shows only what that process measures; the dead-letter depth gauge lives with its
watcher (`shared.dlq_watch`).
"""

from __future__ import annotations

from prometheus_client import Counter

MESSAGES_REDELIVERED = Counter(
    "saleswire_messages_redelivered_total",
    "Messages received again after a failed attempt, by consumer queue",
    ["queue"],
)
MESSAGES_DEAD_LETTERED = Counter(
    "saleswire_messages_dead_lettered_total", "Messages moved to a dead-letter queue, by DLQ name", ["queue"]
)
