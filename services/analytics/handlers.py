"""Analytics' handler: recompute a report whenever its rows change.

Recomputing from the stored rows (not adding deltas) is what makes the handler idempotent: a
redelivered event recomputes the same numbers. It also makes events coalesce: every publisher
writes its rows before it emits the event, so a recompute that *started* after an event was
emitted has seen that event's rows, and the event can be skipped once such a recompute is
saved. A sync that announces progress every few seconds thus costs one recompute at a time,
not one per announcement.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from bson import Decimal128

from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository
from services.analytics.telemetry import RECOMPUTES_SKIPPED, REPORT_RECOMPUTE_SECONDS, REPORTS_FINISHED
from shared import contracts
from shared.broker import Bus

log = logging.getLogger(__name__)


def _computed_from(report: dict[str, object]) -> datetime | None:
    """When the report's saved metrics were started (UTC), or None if never computed."""
    value = report.get("computed_from")
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class AnalyticsHandlers:
    def __init__(
        self, repo: AnalyticsRepository, bus: Bus, *, skew_seconds: float = 2.0, progress_interval_seconds: float = 10.0
    ) -> None:
        self.repo = repo
        self.bus = bus
        self.skew = timedelta(seconds=skew_seconds)
        self.progress_interval = progress_interval_seconds

    def too_soon(self, report: dict[str, object], event: contracts.SalesIngested) -> bool:
        """A progress announcement of a source still being read is skipped while the report's last
        recompute is recent: at least `progress_interval`, and at least 4× as long as that
        recompute took — so recomputes never take more than ~1/5 of the database's time during a
        long sync. The source's settled event always recomputes."""
        computed_from = _computed_from(report)
        if event.settled or computed_from is None:
            return False
        last_took = report.get("recompute_seconds")
        spacing = max(self.progress_interval, 4 * float(last_took) if isinstance(last_took, int | float) else 0.0)
        return datetime.now(UTC) - computed_from < timedelta(seconds=spacing)

    def already_covered(self, report: dict[str, object], event: contracts.SalesIngested) -> bool:
        """True when a saved recompute started after the event was emitted (plus clock skew)."""
        computed_from = _computed_from(report)
        if computed_from is None or report.get("status") == "failed":
            return False
        return computed_from - self.skew >= event.occurred_at

    async def sales_ingested(self, event: contracts.SalesIngested) -> None:
        report = await self.repo.report(event.report_id)
        if report is None:
            log.info("report %s no longer exists; nothing to recompute", event.report_id)
            return
        if self.already_covered(report, event):
            RECOMPUTES_SKIPPED.labels(reason="covered").inc()
            log.info("report %s already recomputed after this event", event.report_id)
            return
        if self.too_soon(report, event):
            RECOMPUTES_SKIPPED.labels(reason="progress_spacing").inc()
            log.info("report %s recomputed recently; progress announcement skipped", event.report_id)
            return
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        totals = await self.repo.totals(event.report_id)
        budget = report["budget"]
        metrics = compute_metrics(
            budget.to_decimal() if isinstance(budget, Decimal128) else Decimal(str(budget)), totals
        )
        settled = await self.repo.sources_settled(event.report_id)
        status = "success" if settled else "processing"
        elapsed = time.perf_counter() - started
        await self.repo.save_metrics(event.report_id, metrics, status, started_at, round(elapsed, 3))
        REPORT_RECOMPUTE_SECONDS.observe(elapsed)
        log.info("report recomputed", extra={"report_id": event.report_id, "seconds": round(elapsed, 3)})
        if settled:
            REPORTS_FINISHED.labels(status="success").inc()
            await self.bus.publish(
                contracts.ReportUpdated(correlation_id=event.correlation_id, report_id=event.report_id)
            )
