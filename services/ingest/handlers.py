"""Ingest's message handlers: an uploaded workbook, and sales published by other systems.

Both are idempotent: rows have deterministic ids, so a redelivered message changes nothing a
second time, and the `sales ingested` event they end with only asks analytics to recompute.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from services.ingest.excel import ParseJob, ParseLimits, ParseOutcome
from services.ingest.excel.stream import SpareWorker, stream_workbook
from services.ingest.recorded import event_source_report_id, row_for
from services.ingest.repository import IngestRepository
from services.ingest.telemetry import FILES_PROCESSED, PARSE_SECONDS, ROWS_INGESTED, ROWS_REJECTED
from shared import contracts
from shared.broker import Bus, PermanentError
from shared.report_versions import bump_report_rows
from shared.settings import Settings
from shared.source_reports import INGESTED

log = logging.getLogger(__name__)


class IngestHandlers:
    def __init__(self, repo: IngestRepository, bus: Bus, settings: Settings) -> None:
        self.repo = repo
        self.bus = bus
        self.settings = settings
        # A parse worker started ahead of the next file (a small upload then skips its start).
        self.spare = SpareWorker()

    async def upload_excel(self, command: contracts.UploadExcel) -> None:
        source = await self.repo.source_report(command.source_report_id)
        if source is None:
            # The gateway already rejected and forgot this upload; nothing is left to do.
            log.info("source report %s no longer exists; skipping", command.source_report_id)
            return
        if source.get("status") == INGESTED:
            # Stored before, but we may have died before announcing it: announce again (harmless).
            await self._announce(command, int(source.get("rows") or 0))
            return
        await self.repo.mark_processing(command.report_id, command.source_report_id)
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="saleswire-ingest-") as tmp:
            workbook = Path(tmp) / "upload.bin"
            spool = Path(tmp) / "rows.bson"
            await self.repo.download(command.file_id, workbook)
            downloaded = time.perf_counter() - started
            # The worker streams the stored chunks (packed and encoded in the worker) while it
            # builds later ones: they are inserted as they come, one batch in flight. A small file
            # is checked whole first; a large one part by part, its chunks stored ahead of the
            # verdict (removed again if it fails). The file is accepted (what the gateway waits
            # for) at the verdict.
            result = await stream_workbook(
                ParseJob(
                    path=workbook,
                    spool_path=spool,
                    report_id=command.report_id,
                    source_report_id=command.source_report_id,
                    channel_id=command.channel_id,
                    creator_id=command.creator_id,
                    timezone=command.timezone,
                    currency=command.currency,
                ),
                ParseLimits.from_settings(self.settings),
                store=self.repo.insert_new,
                spare=self.spare,
                accepted=lambda rows: self.repo.accept(command.source_report_id, rows),
                discard=lambda: self.repo.discard_rows(command.source_report_id),
            )
        outcome = result.outcome
        PARSE_SECONDS.observe(outcome.elapsed_seconds)
        # Seconds since the command was taken, per step (bench.pipeline prints them).
        timeline = {"downloaded": round(downloaded, 3)} | {
            step: round(downloaded + at, 3) for step, at in result.timeline.items()
        }
        log.info(
            "workbook parsed",
            extra={
                "outcome": outcome.kind,
                "rows": outcome.rows,
                "chunks": result.chunks,
                "reader": result.reader,
                "errors": outcome.total_errors,
                "seconds": round(outcome.elapsed_seconds, 3),
                "peak_rss_bytes": outcome.peak_rss_bytes,
                "diagnostic": outcome.diagnostic,
                "timeline": timeline,
            },
        )
        if not outcome.ok or result.totals is None:
            # Also after a verdict: whatever was stored of this file is removed with the rejection.
            await self._reject(command, outcome)
            return
        await self.repo.mark_ingested(command.source_report_id, outcome.rows, result.totals)
        ROWS_INGESTED.labels(source="excel").inc(outcome.rows)
        FILES_PROCESSED.labels(outcome="ok").inc()
        await self._announce(command, outcome.rows)
        log.info(
            "upload stored",
            extra={"timeline": timeline | {"ingested": round(time.perf_counter() - started, 3)}},
        )

    async def _reject(self, command: contracts.UploadExcel, outcome: ParseOutcome) -> None:
        verdict: dict[str, Any] = {
            "ok": False,
            "kind": outcome.kind,
            "detail": outcome.detail,
            "total_errors": outcome.total_errors,
            "errors": [e.to_dict() for e in outcome.errors],
        }
        await self.repo.reject(command.report_id, command.source_report_id, verdict)
        await bump_report_rows(self.repo.db, command.report_id)  # its rows were removed
        ROWS_REJECTED.labels(source="excel").inc(outcome.total_errors)
        FILES_PROCESSED.labels(outcome=outcome.kind).inc()
        await self.bus.publish(
            contracts.ReportFailed(
                correlation_id=command.correlation_id, report_id=command.report_id, error_message=outcome.detail
            )
        )

    async def _announce(self, command: contracts.UploadExcel, rows: int) -> None:
        await self.bus.publish(
            contracts.SalesIngested(
                correlation_id=command.correlation_id,
                report_id=command.report_id,
                source_report_id=command.source_report_id,
                rows=rows,
                rows_version=await bump_report_rows(self.repo.db, command.report_id),
            )
        )

    async def sale_recorded(self, event: contracts.SaleRecorded) -> None:
        report = await self.repo.report(event.report_id)
        if report is None or int(report["channel_id"]) != event.channel_id:
            raise PermanentError(f"no report {event.report_id} for channel {event.channel_id}")
        creator_id = int(report["creator_id"])
        source_report_id = event_source_report_id(event.report_id, event.source)
        await self.repo.ensure_source_report(
            {
                "_id": source_report_id,
                "report_id": event.report_id,
                "creator_id": creator_id,
                "channel_id": report["channel_id"],
                "kind": "event",
                "name": event.source,
                "status": INGESTED,
                "verdict": {"ok": True},
                "created_at": event.occurred_at,
            }
        )
        currency = str(report.get("currency") or self.settings.report_currency)
        await self.repo.upsert([row_for(event, sale, creator_id, currency) for sale in event.sales])
        rows = await self.repo.count_rows(source_report_id)
        await self.repo.mark_ingested(source_report_id, rows)
        ROWS_INGESTED.labels(source="event").inc(len(event.sales))
        await self.bus.publish(
            contracts.SalesIngested(
                correlation_id=event.correlation_id,
                report_id=event.report_id,
                source_report_id=source_report_id,
                rows=rows,
                rows_version=await bump_report_rows(self.repo.db, event.report_id),
            )
        )
