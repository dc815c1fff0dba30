"""Analytics' handlers: recompute a report whenever its rows change, or its rates or link costs.

Recomputing from the stored rows (not adding deltas) is what makes the handler idempotent: a
redelivered event recomputes the same numbers. It also makes events coalesce: every writer of a
report's rows increments the report's rows version after writing them and puts the new version
on its event (`shared.report_versions`); a recompute increments it too, before it reads the rows,
and saves the value it got as `computed_version`, so an event whose version is no later than a
saved recompute's has had its rows counted, and is skipped. No clock takes part in that rule, so
replicas on machines whose clocks disagree (by any amount) neither skip an event they must not
nor save an older result over a newer one. A sync that announces progress every few seconds
thus costs one recompute at a time, not one per announcement.

A change of exchange rates or link costs (`RecomputeReport`) recomputes from the raw totals the
last pass saved on the report, without reading a row; every save carries the inputs version it
applied, and a save whose inputs changed meanwhile applies the new ones (see `save`).
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime

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
# Reports whose last recompute start this replica remembers for the progress spacing (the
# oldest are forgotten first; a forgotten report merely recomputes on its next announcement).
REMEMBERED_RECOMPUTES = 10_000


def computed_version_of(report: Document) -> int | None:
    """The rows version the report's saved metrics were computed from, or None if never computed
    (or computed by a release before rows versions)."""
    value = report.get("computed_version")
    return int(value) if isinstance(value, int) else None


def wall_clock() -> datetime:
    return datetime.now(UTC)


def already_covered(report: Document, event: contracts.SalesIngested) -> bool:
    """True when a saved recompute read the report's rows version of this event, or a later one:
    it saw the event's rows (they were written before that version was taken). An event without
    a version (an older release's) and a failed report always recompute."""
    computed = computed_version_of(report)
    if computed is None or event.rows_version is None or report.get("status") == REPORT_FAILED:
        return False
    return event.rows_version <= computed


class ProgressSpacing:
    """A progress announcement of a source still being read is skipped while this replica's last
    recompute of the report is recent: at least `interval` seconds, and at least 4× as long as the
    last recompute took — so recomputes never take more than ~1/5 of the database's time during a
    long sync (per replica). The source's settled event always recomputes.

    Judged on this process's monotonic clock alone, never against a time another host wrote: a
    wall-clock comparison across replicas is off by their skew (an hour of skew skipped every
    announcement, or none). The database's `$$NOW` would be one clock for all, but SecantusDB does
    not evaluate it. The cost: with N replicas a report may be recomputed up to N times per
    interval during a sync; no figure depends on it (the settled event is never skipped here)."""

    def __init__(self, interval: float, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.monotonic = monotonic
        self.started: OrderedDict[str, float] = OrderedDict()  # report id → last recompute start

    def started_now(self, report_id: str) -> None:
        self.started[report_id] = self.monotonic()
        self.started.move_to_end(report_id)
        while len(self.started) > REMEMBERED_RECOMPUTES:
            self.started.popitem(last=False)

    def too_soon(self, report: Document, event: contracts.SalesIngested) -> bool:
        started = self.started.get(str(report["_id"]))
        if event.settled or started is None:
            return False
        last_took = report.get("recompute_seconds")
        spacing = max(self.interval, 4 * float(last_took) if isinstance(last_took, int | float) else 0.0)
        return self.monotonic() - started < spacing


class AnalyticsHandlers:
    def __init__(
        self,
        repo: AnalyticsRepository,
        bus: Bus,
        *,
        progress_interval_seconds: float = 10.0,
        default_currency: str = DEFAULT_CURRENCY,
        clock: Callable[[], datetime] = wall_clock,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.repo = repo
        self.default_currency = default_currency
        self.bus = bus
        # `clock` only stamps `computed_from` (when, for people reading the report); no decision
        # is taken on it, so replicas' clocks need not agree (tests skew it by hours).
        self.clock = clock
        self.spacing = ProgressSpacing(progress_interval_seconds, monotonic)

    def inputs(self, report: Document) -> ReportInputs:
        return ReportInputs.of(report, self.default_currency)

    async def sales_ingested(self, event: contracts.SalesIngested) -> None:
        report = await self.repo.report(event.report_id)
        if report is None:
            log.info("report %s no longer exists; nothing to recompute", event.report_id)
            return
        if already_covered(report, event):
            RECOMPUTES_SKIPPED.labels(reason="covered").inc()
            log.info("report %s already recomputed after this event", event.report_id)
            return
        if self.spacing.too_soon(report, event):
            RECOMPUTES_SKIPPED.labels(reason="progress_spacing").inc()
            log.info("report %s recomputed recently; progress announcement skipped", event.report_id)
            return
        await self.recompute_from_rows(report, event.correlation_id)

    async def recompute_from_rows(self, report: Document, correlation_id: str, *, settle: bool = True) -> None:
        """`settle`: the report's status follows its sources (a row change); a change of inputs
        alone (`settle=False`) leaves the status as it is."""
        report_id = str(report["_id"])
        # The recompute takes a version of its own, before it reads a row: every write whose
        # increment came earlier is in what it reads, and no two recomputes share a version, so
        # their saves are ordered by when their reads began. (Reading the version instead let two
        # passes from one version overwrite each other in either order, and a recompute from the
        # stored totals save its older totals over rows saved meanwhile.)
        version = await self.repo.take_rows_version(report_id)
        if version is None:
            log.info("report %s no longer exists; nothing to recompute", report_id)
            return
        started_at = self.clock()
        self.spacing.started_now(report_id)
        started = time.perf_counter()
        totals = await self.repo.totals(report_id, self.inputs(report).currency)
        settled = await self.repo.sources_settled(report_id)
        status = (REPORT_SUCCESS if settled else REPORT_PROCESSING) if settle else None
        elapsed = time.perf_counter() - started
        saved = await self.save(
            report,
            totals,
            computed_version=version,
            computed_from=started_at,
            status=status,
            seconds=round(elapsed, 3),
        )
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
        computed_version = computed_version_of(report)
        if not is_current_document(stored) or computed_version is None:
            await self.recompute_from_rows(report, command.correlation_id, settle=False)
            return
        if (
            int(report.get("applied_inputs_version") or 0) >= inputs.version
            and inputs.version >= command.inputs_version
        ):
            log.info("report %s already shows inputs version %s", command.report_id, inputs.version)
            return
        assert isinstance(stored, dict)
        # The stored totals' version and time: this save claims no row it did not read.
        saved = await self.save(
            report, from_document(stored), computed_version=computed_version, computed_from=report.get("computed_from")
        )
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
        computed_version: int,
        computed_from: object,
        status: str | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Computes the figures with the report's current inputs and saves them with the links
        table. No lost update: when the save is refused because the rates or costs changed while
        we computed, they are read again and applied to the same totals (no row is read again);
        when it is refused because a computation from a later rows version has saved, ours is
        older in every respect and is dropped. Returns whether ours was saved."""
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
                computed_version=computed_version,
                computed_from=computed_from,
                inputs_version=inputs.version,
                status=status,
                seconds=seconds,
            ):
                await self.repo.save_links(
                    report_id,
                    current.get("creator_id"),
                    figures.links,
                    computed_version=computed_version,
                    computed_from=computed_from,
                    inputs_version=inputs.version,
                )
                return True
            current = await self.repo.report(report_id)
            if current is None:
                return False
            stored_version = computed_version_of(current)
            if stored_version is not None and stored_version > computed_version:
                return False
        raise RuntimeError(f"report {report_id} kept changing its inputs during {SAVE_ATTEMPTS} saves")
