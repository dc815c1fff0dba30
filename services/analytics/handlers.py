"""Analytics' handlers: recompute a report whenever its rows change, or its rates or link costs.

Recomputing from the stored rows (not adding deltas) is what makes the handler idempotent: a
redelivered event recomputes the same numbers. It also makes events coalesce: every publisher
writes its rows before it emits the event, so a recompute that *started* after an event was
emitted has seen that event's rows, and the event can be skipped once such a recompute is
saved. A sync that announces progress every few seconds thus costs one recompute at a time,
not one per announcement.

A change of exchange rates or link costs (`RecomputeReport`) recomputes from the raw totals the
last pass saved on the report, without reading a row; every save carries the inputs version it
applied, and a save whose inputs changed meanwhile applies the new ones (see `save`).
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

from services.analytics.inputs import ReportInputs
from services.analytics.metrics import compute_metrics
from services.analytics.repository import AnalyticsRepository
from services.analytics.telemetry import RECOMPUTES_SKIPPED, REPORT_RECOMPUTE_SECONDS, REPORTS_FINISHED
from shared import contracts
from shared.broker import Bus
from shared.currency import DEFAULT_CURRENCY
from shared.mongo import Document
from shared.reports import REPORT_FAILED, REPORT_PROCESSING, REPORT_SUCCESS
from shared.totals import Totals, from_document, is_current_document

log = logging.getLogger(__name__)
# Saves refused because the inputs changed meanwhile, before the message is retried whole.
SAVE_ATTEMPTS = 5


def _computed_from(report: dict[str, object]) -> datetime | None:
    """When the report's saved metrics were started (UTC), or None if never computed."""
    value = report.get("computed_from")
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class AnalyticsHandlers:
    def __init__(
        self,
        repo: AnalyticsRepository,
        bus: Bus,
        *,
        skew_seconds: float = 2.0,
        progress_interval_seconds: float = 10.0,
        default_currency: str = DEFAULT_CURRENCY,
    ) -> None:
        self.repo = repo
        self.default_currency = default_currency
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
        if computed_from is None or report.get("status") == REPORT_FAILED:
            return False
        return computed_from - self.skew >= event.occurred_at

    def inputs(self, report: Document) -> ReportInputs:
        return ReportInputs.of(report, self.default_currency)

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
        await self.recompute_from_rows(report, event.correlation_id)

    async def recompute_from_rows(self, report: Document, correlation_id: str, *, settle: bool = True) -> None:
        """`settle`: the report's status follows its sources (a row change); a change of inputs
        alone (`settle=False`) leaves the status as it is."""
        report_id = str(report["_id"])
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        totals = await self.repo.totals(report_id, self.inputs(report).currency)
        settled = await self.repo.sources_settled(report_id)
        status = (REPORT_SUCCESS if settled else REPORT_PROCESSING) if settle else None
        elapsed = time.perf_counter() - started
        saved = await self.save(report, totals, computed_from=started_at, status=status, seconds=round(elapsed, 3))
        REPORT_RECOMPUTE_SECONDS.observe(elapsed)
        log.info("report recomputed", extra={"report_id": report_id, "seconds": round(elapsed, 3), "saved": saved})
        if saved and (settled if settle else report.get("status") == REPORT_SUCCESS):
            if settle:
                REPORTS_FINISHED.labels(status=REPORT_SUCCESS).inc()
            await self.bus.publish(contracts.ReportUpdated(correlation_id=correlation_id, report_id=report_id))

    async def recompute_report(self, command: contracts.RecomputeReport) -> None:
        """New rates or link costs: recompute from the stored totals of the last pass (no row is
        read), or from the rows when the report has none yet."""
        report = await self.repo.report(command.report_id)
        if report is None:
            log.info("report %s no longer exists; nothing to recompute", command.report_id)
            return
        inputs = self.inputs(report)
        stored = report.get("totals")
        computed_from = _computed_from(report)
        if not is_current_document(stored) or computed_from is None:
            await self.recompute_from_rows(report, command.correlation_id, settle=False)
            return
        if (
            int(report.get("applied_inputs_version") or 0) >= inputs.version
            and inputs.version >= command.inputs_version
        ):
            log.info("report %s already shows inputs version %s", command.report_id, inputs.version)
            return
        assert isinstance(stored, dict)
        saved = await self.save(report, from_document(stored), computed_from=computed_from)
        log.info(
            "report recomputed from stored totals",
            extra={"report_id": command.report_id, "reason": command.reason, "saved": saved},
        )
        if saved and report.get("status") == REPORT_SUCCESS:
            await self.bus.publish(
                contracts.ReportUpdated(correlation_id=command.correlation_id, report_id=command.report_id)
            )

    async def save(
        self,
        report: Document,
        totals: Totals,
        *,
        computed_from: datetime,
        status: str | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Computes the figures with the report's current inputs and saves them with the links
        table. No lost update: when the save is refused because the rates or costs changed while
        we computed, they are read again and applied to the same totals (no row is read again);
        when it is refused because a computation that started later has saved, ours is older in
        every respect and is dropped. Returns whether ours was saved."""
        report_id = str(report["_id"])
        current: Document | None = report
        for _ in range(SAVE_ATTEMPTS):
            if current is None:
                return False
            inputs = self.inputs(current)
            figures = compute_metrics(
                inputs.budget,
                totals,
                currency=inputs.currency,
                exchange_rates=inputs.exchange_rates,
                link_costs=inputs.link_costs,
            )
            if await self.repo.save_figures(
                report_id,
                figures.fields,
                totals,
                computed_from=computed_from,
                inputs_version=inputs.version,
                status=status,
                seconds=seconds,
            ):
                await self.repo.save_links(
                    report_id,
                    current.get("creator_id"),
                    figures.links,
                    computed_from=computed_from,
                    inputs_version=inputs.version,
                )
                return True
            current = await self.repo.report(report_id)
            if current is None:
                return False
            stored_from = _computed_from(current)
            if stored_from is not None and stored_from > computed_from:
                return False
        raise RuntimeError(f"report {report_id} kept changing its inputs during {SAVE_ATTEMPTS} saves")
