"""What a run reads, and which sources a poll re-syncs. Pure.

A run reads a window of its source report's period. The first run reads it all ("full"); later
runs ("incremental") read from the last day seen less the connection's lookback window
(`lookback_days`, default 7): OFD receipts of offline cash registers arrive days late, and
refunds and payments change sales of the last days. Late changes older than the lookback are the
platform puller's `late_changes` (SweetClub lists every refund of the period; Eduzz finds late
payments by payment date). Only a platform with late changes that nothing documented can find
(Eduzz refunds of old sales) also re-reads its whole period every `full_every_runs` runs.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

from services.connectors.platforms import KINDS
from services.connectors.platforms.base.puller import Window
from shared.mongo import Document
from shared.source_reports import SUCCESS

Mode = Literal["full", "incremental"]
DEFAULT_LOOKBACK_DAYS = 7


def as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.astimezone(UTC).date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def plan_window(
    period_start: date,
    period_end: date,
    high_water: date | None,
    *,
    lookback_days: int = DEFAULT_LOOKBACK_DAYS,
    runs_since_full: int = 0,
    full_every: int | None = None,
    today: date | None = None,
) -> tuple[Window, Mode]:
    """The window of the next run and its mode. Nothing is dated after tomorrow (a period that
    ends in 2030 is not read day by day into the future)."""
    end = min(period_end, (today or datetime.now(UTC).date()) + timedelta(days=1))
    end = max(end, period_start)
    full_due = full_every is not None and runs_since_full + 1 >= full_every
    if high_water is None or full_due or high_water < period_start:
        return Window(period_start, end), "full"
    start = max(period_start, min(high_water, end) - timedelta(days=max(0, lookback_days)))
    return Window(start, end), "incremental"


def due_for_poll(source_report: Document, moment: datetime) -> bool:
    """Whether a scheduled poll re-syncs this source report: its period is still open (or ended
    within the last day: late sales and refunds still arrive), or it never synced successfully."""
    end = source_report.get("period_end")
    still_open = isinstance(end, datetime) and end.astimezone(UTC) >= moment - timedelta(days=1)
    return still_open or source_report.get("status") != SUCCESS


def sync_lag_seconds(polled_connections: list[Document], moment: datetime) -> dict[str, float]:
    """Per platform, how long its least recently synced polled connection has waited (since its
    creation, if it never synced); 0 for a platform with none."""
    lag: dict[str, float] = dict.fromkeys(KINDS, 0.0)
    for conn in polled_connections:
        kind, since = conn.get("kind"), conn.get("last_synced_at") or conn.get("created_at")
        if kind in lag and isinstance(since, datetime):
            lag[kind] = max(lag[kind], (moment - since.astimezone(UTC)).total_seconds())
    return lag


def poll_is_due(connection: Document, moment: datetime) -> bool:
    at = connection.get("next_poll_at")
    return isinstance(at, datetime) and at.astimezone(UTC) <= moment


def running(source_report: Document) -> bool:
    return bool((source_report.get("progress") or {}).get("state") == "running")
