"""Analytics' handler: recompute a report whenever its rows change.

Recomputing from the stored rows (not adding deltas) is what makes the handler idempotent: a
redelivered event recomputes the same numbers.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from decimal import Decimal

from bson import Decimal128

from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository
from shared import contracts
from shared.broker import Bus
from shared.metrics import REPORT_RECOMPUTE_SECONDS, REPORTS_FINISHED

log = logging.getLogger(__name__)


class AnalyticsHandlers:
    def __init__(self, repo: AnalyticsRepository, bus: Bus) -> None:
        self.repo = repo
        self.bus = bus

    async def sales_ingested(self, event: contracts.SalesIngested) -> None:
        report = await self.repo.report(event.report_id)
        if report is None:
            log.info("report %s no longer exists; nothing to recompute", event.report_id)
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
        await self.repo.save_metrics(event.report_id, metrics, status, started_at)
        elapsed = time.perf_counter() - started
        REPORT_RECOMPUTE_SECONDS.observe(elapsed)
        log.info("report recomputed", extra={"report_id": event.report_id, "seconds": round(elapsed, 3)})
        if settled:
            REPORTS_FINISHED.labels(status="success").inc()
            await self.bus.publish(
                contracts.ReportUpdated(correlation_id=event.correlation_id, report_id=event.report_id)
            )
