"""The sync engine: one run of one source report.

A run reads its window's listing page by page, the next pages fetched while the last ones are
stored (`read_ahead.py`). After every page, or every group of pages that were waiting together,
in this order: the new or changed rows are written (idempotent by `_id`, unchanged ones not at
all), unreadable items are quarantined, the cursor is saved, progress is shown (about once a
second), and — at most every `publish_every_seconds` — `SalesIngested` is published. When the
listing (and the late changes) are read, the source is `success` and a settled `SalesIngested`
goes out: the report's sales and profit are right from the listing alone. Then the rows marked
pending get their detail calls (`enrichment.py`), and the run ends with a last settled event. A
process killed anywhere resumes from the checkpoint: the pages after the last one stored are read
again and written over themselves, the rows still pending are enriched.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable
from typing import Any, cast

from services.connectors.platforms import platform
from services.connectors.platforms.base.http import ConnectorError
from services.connectors.platforms.base.puller import Cursor, PulledPage, Puller, Window
from services.connectors.platforms.base.registry import CredentialsError
from services.connectors.platforms.base.rows import RowContext
from services.connectors.sync.enrichment import Enricher
from services.connectors.sync.leases import now
from services.connectors.sync.planning import DEFAULT_LOOKBACK_DAYS, as_date, plan_window
from services.connectors.sync.read_ahead import joined, later, read_ahead
from services.connectors.sync.reference import refresh_reference
from services.connectors.sync.rows_store import RowsStore
from services.connectors.sync.run_state import RunState
from services.connectors.sync.services import Services, build_puller, options_of
from services.connectors.sync.state_store import SyncStateStore
from services.connectors.telemetry import SALES_SYNCED
from shared import contracts, source_reports
from shared.logging import correlated
from shared.mongo import COLLECTIONS, Document
from shared.report_versions import bump_report_rows

log = logging.getLogger(__name__)


class Announcer:
    """SalesIngested for one source report: progress at most every `every` seconds, settled always."""

    def __init__(self, svc: Services, sr: Document, correlation: str, every: float) -> None:
        self.svc, self.sr, self.correlation, self.every = svc, sr, correlation, every
        self.unpublished = 0
        self.last = time.monotonic()

    async def progress(self, rows: int) -> None:
        self.unpublished += rows
        if time.monotonic() - self.last >= self.every:
            await self.publish(settled=False)

    async def publish(self, *, settled: bool) -> None:
        # Every page and enrichment batch is stored before it is announced here.
        report_id = str(self.sr["report_id"])
        await self.svc.bus.publish(
            contracts.SalesIngested(
                report_id=report_id,
                source_report_id=str(self.sr["_id"]),
                rows=self.unpublished,
                correlation_id=self.correlation,
                settled=settled,
                rows_version=await bump_report_rows(self.svc.db, report_id),
            )
        )
        self.unpublished, self.last = 0, time.monotonic()


class SyncEngine:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.db = svc.db
        self.rows = RowsStore(svc.db)
        self.states = SyncStateStore(svc.db)

    async def sync_source_report(self, conn: Document, sr: Document) -> None:
        """One run (or the rest of an interrupted one). Never raises for an API's misbehaviour:
        the outcome is written on the source report. The run's correlation id is the one of the
        request that asked for it (a resumed run keeps its own)."""
        state = await self.states.load(str(sr["_id"]))
        run = self.states.run_of(state)
        correlation = (run.correlation_id if run else "") or str(sr.get("sync_correlation_id") or uuid.uuid4().hex)
        with correlated(correlation):
            await self._sync(conn, sr, state, run, correlation)

    async def _sync(
        self, conn: Document, sr: Document, state: Document, run: RunState | None, correlation: str
    ) -> None:
        kind = str(conn["kind"])
        try:
            puller = build_puller(self.svc, conn)
        except (CredentialsError, ValueError) as exc:
            await self.fail(sr, f"{kind}: {exc}", correlation)
            return
        announcer = Announcer(self.svc, sr, correlation, self.svc.cfg.publish_every_seconds)
        try:
            run = run or await self._begin(conn, sr, state, puller, correlation)
            if run.phase == "listing":
                await self.states.show(str(sr["_id"]), {"status": source_reports.PROCESSING, "error_message": None})
            await self.states.show_run(str(sr["_id"]), run)
            await refresh_reference(self.svc, conn, puller)
            if run.phase == "listing":
                await self._list(conn, sr, state, run, puller, announcer)
            await self._enrich(conn, sr, run, puller, announcer)
            await self._finish(conn, sr, state, run, announcer)
        except ConnectorError as exc:
            await self.fail(sr, str(exc), correlation, listed=run is not None and run.phase == "enriching")
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the run "running" forever; the checkpoint is kept
            log.exception("sync crashed", extra={"source_report_id": str(sr["_id"]), "api": kind})
            await self.fail(sr, f"internal error: {type(exc).__name__}", correlation)
        finally:
            await puller.aclose()

    async def _begin(self, conn: Document, sr: Document, state: Document, puller: Puller, correlation: str) -> RunState:
        options = options_of(conn)
        spec = platform(str(conn["kind"]))
        full_every = options.get("full_every_runs", spec.full_every_runs)
        window, mode = plan_window(
            as_date(sr["period_start"]),
            as_date(sr["period_end"]),
            self.states.high_water(state),
            lookback_days=int(options.get("lookback_days", DEFAULT_LOOKBACK_DAYS)),
            runs_since_full=int(cast(int, state.get("runs_since_full", 0))),
            full_every=int(full_every) if full_every else None,
        )
        run = RunState(
            window_start=window.start.isoformat(),
            window_end=window.end.isoformat(),
            mode=mode,
            correlation_id=correlation,
            started_at=now(),
            cursor=dict(puller.first_cursor),
        )
        await self.states.begin(str(sr["_id"]), str(conn["_id"]), run)
        return run

    def _context(self, conn: Document, sr: Document) -> RowContext:
        spec, options = platform(str(conn["kind"])), options_of(conn)
        return RowContext(
            report_id=str(sr["report_id"]),
            source_report_id=str(sr["_id"]),
            channel_id=int(cast(int, sr["channel_id"])),
            creator_id=int(cast(int, sr["creator_id"])),
            connection_id=str(conn["_id"]),
            timezone=spec.timezone(options),
            currency=spec.currency(options),
        )

    async def _store(self, conn: Document, sr: Document, run: RunState, puller: Puller, page: PulledPage) -> int:
        changed = await self.rows.store_listing(page.rows, enrich=puller.enriches)
        run.quarantined += await self.rows.quarantine(puller.api, str(sr["_id"]), str(conn["_id"]), page.quarantined)
        run.sales += len(page.rows)
        run.changed += changed
        SALES_SYNCED.labels(api=puller.api).inc(len(page.rows))
        return changed

    async def _list(
        self, conn: Document, sr: Document, state: Document, run: RunState, puller: Puller, announcer: Announcer
    ) -> None:
        sr_id, ctx = str(sr["_id"]), self._context(conn, sr)
        high_water = self.states.high_water(state)
        shown = time.monotonic()

        def fetch(cursor: Cursor) -> Awaitable[PulledPage]:
            return puller.fetch(run.window, {**puller.first_cursor, **cursor}, ctx)

        async with contextlib.aclosing(read_ahead(fetch, run.cursor)) as batches:
            try:
                async for pages in batches:
                    page = joined(pages)
                    changed = await self._store(conn, sr, run, puller, page)
                    high_water = later(high_water, page.high_water)
                    run.pages += len(pages)
                    run.cursor = page.next_cursor
                    await self.states.checkpoint(sr_id, run, high_water)
                    # Progress is shown about once a second: a write per page would cost the
                    # listing a third of its database time on small pages.
                    if time.monotonic() - shown >= 1.0:
                        shown = time.monotonic()
                        await self.states.show_run(sr_id, run)
                    if run.cursor is not None:
                        await announcer.progress(changed)
                    else:
                        announcer.unpublished += changed
            except Exception:  # a failed run shows how far it got
                await self.states.show_run(sr_id, run)
                raise
        if run.mode == "incremental":
            period = Window(as_date(sr["period_start"]), as_date(sr["period_end"]))
            late = await puller.late_changes(period, run.window.start, ctx)
            announcer.unpublished += await self._store(conn, sr, run, puller, late)
        await self._listed(sr, run, announcer)

    async def _listed(self, sr: Document, run: RunState, announcer: Announcer) -> None:
        """The listing is read: the report's sales and profit are final; enrichment follows."""
        sr_id = str(sr["_id"])
        run.phase, run.listed_at = "enriching", now()
        await self.states.checkpoint(sr_id, run)
        await self.states.show_run(sr_id, run, {"status": source_reports.SUCCESS, "last_synced_at": run.listed_at})
        await announcer.publish(settled=True)

    async def _enrich(self, conn: Document, sr: Document, run: RunState, puller: Puller, announcer: Announcer) -> None:
        sr_id = str(sr["_id"])
        concurrency = int(options_of(conn).get("detail_concurrency", self.svc.cfg.detail_concurrency))

        shown = [time.monotonic()]

        async def after_batch(state: RunState, written: int) -> None:
            # The rows carry the real checkpoint (their pending marker); the run's counters are
            # shown about once a second, not after every batch.
            await announcer.progress(written)
            if time.monotonic() - shown[0] >= 1.0:
                shown[0] = time.monotonic()
                await self.states.checkpoint(sr_id, state)
                await self.states.show_run(sr_id, state)

        await Enricher(puller, self.rows, concurrency=concurrency).run(sr_id, str(conn["_id"]), run, after_batch)
        await self.states.checkpoint(sr_id, run)
        await self.states.show_run(sr_id, run)

    async def _finish(self, conn: Document, sr: Document, state: Document, run: RunState, announcer: Announcer) -> None:
        sr_id, finished = str(sr["_id"]), now()
        await self.states.finish(sr_id, run, int(cast(int, state.get("runs_since_full", 0))))
        await self.states.show(
            sr_id,
            {
                "status": source_reports.SUCCESS,
                "progress.state": source_reports.SYNC_DONE,
                "progress.finished_at": finished,
                "progress.updated_at": finished,
                "last_synced_at": finished,
            },
        )
        await self.db[COLLECTIONS.connections].update_one({"_id": conn["_id"]}, {"$set": {"last_synced_at": finished}})
        await announcer.publish(settled=True)
        log.info(
            "sync finished",
            extra={"source_report_id": sr_id, "api": conn["kind"], "mode": run.mode, **_figures(run)},
        )

    async def fail(self, sr: Document, message: str, correlation: str, *, listed: bool = False) -> None:
        """The source report says why; the report is told, so it settles with the rows it has. A
        run that fails while enriching keeps its `success`: its figures are the listing's, right."""
        sr_id = str(sr["_id"])
        log.warning("sync failed", extra={"source_report_id": sr_id, "reason": message})
        fields: dict[str, Any] = {
            "error_message": message,
            "progress.state": source_reports.SYNC_FAILED,
            "progress.error_message": message,
            "progress.updated_at": now(),
        }
        if not listed:
            fields["status"] = source_reports.FAILED
        await self.states.show(sr_id, fields)
        try:
            await Announcer(self.svc, sr, correlation, 0).publish(settled=True)
        except Exception:  # the failure is recorded on the source report; the next event settles the report
            log.warning("could not announce the failed sync", extra={"source_report_id": sr_id}, exc_info=True)


def _figures(run: RunState) -> dict[str, int]:
    return {
        "pages": run.pages,
        "sales": run.sales,
        "changed": run.changed,
        "enriched": run.enriched,
        "quarantined": run.quarantined,
    }
