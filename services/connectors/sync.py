"""The sync engine and the scheduler.

A *run* pulls one source report's window page by page. After every page, in this order:
rows are upserted (idempotent by `_id`), then the cursor is saved, then progress is written,
and — at most every `publish_every_seconds`, and always at the end — `SalesIngested` is
published. A process killed anywhere in that sequence resumes at the saved cursor: the page it
was on is read again and upserted over itself, so there is no duplicate and no gap.

Who runs what: sync requests are durable flags on source reports (`sync_requested`), set by the
SyncConnection handler and by the poll schedule. Every replica's scheduler looks for flagged
source reports (and runs orphaned by a dead replica), takes the connection's lease in MongoDB,
and works through that connection's flagged reports. One connection → one replica at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.config import ConnectorSettings
from services.connectors.http import ConnectorError
from services.connectors.normalise import KINDS, RowContext
from services.connectors.pullers import CredentialsError, Puller, Window, make_puller, timezone_of
from services.connectors.store import Leases, now, upsert_rows
from services.connectors.telemetry import SALES_SYNCED, SYNC_LAG_SECONDS
from shared import contracts
from shared.broker import Bus
from shared.credentials import CredentialsBox, Kind
from shared.logging import correlated
from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings

log = logging.getLogger(__name__)


def due_for_poll(source_report: Document, moment: datetime) -> bool:
    """Whether a scheduled poll re-syncs this source report: its period is still open (or ended
    within the last day: late sales and refunds still arrive), or it never synced successfully."""
    end = source_report.get("period_end")
    still_open = isinstance(end, datetime) and end.astimezone(UTC) >= moment - timedelta(days=1)
    return still_open or source_report.get("status") != "success"


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


def _running(source_report: Document) -> bool:
    return bool((source_report.get("progress") or {}).get("state") == "running")


def plan_window(
    period_start: date, period_end: date, high_water: date | None, runs_since_full: int, full_every: int
) -> tuple[Window, str]:
    """Full on the first run and every `full_every` runs; otherwise from the last day seen
    (that day included: sales may still arrive on it, and OFD's day total may still grow)."""
    if high_water is None or runs_since_full + 1 >= full_every or high_water < period_start:
        return Window(period_start, period_end), "full"
    return Window(min(high_water, period_end), period_end), "incremental"


def _as_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


@dataclass
class Services:
    db: AsyncDatabase[Document]
    bus: Bus
    settings: Settings
    cfg: ConnectorSettings


def build_puller(svc: Services, conn: Document) -> Puller:
    kind = cast(Kind, conn["kind"])
    credentials = CredentialsBox(svc.settings).open(str(conn["credentials"]))
    options = cast(dict[str, Any], conn.get("options") or {})
    return make_puller(kind, str(conn["base_url"]), credentials, options, svc.cfg)


class SyncEngine:
    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.db = svc.db

    async def _progress(self, sr_id: str, fields: dict[str, Any]) -> None:
        await self.db[COLLECTIONS.source_reports].update_one({"_id": sr_id}, {"$set": fields})

    async def _publish(self, sr: Document, rows: int, correlation: str, *, settled: bool) -> None:
        await self.svc.bus.publish(
            contracts.SalesIngested(
                report_id=str(sr["report_id"]),
                source_report_id=str(sr["_id"]),
                rows=rows,
                correlation_id=correlation,
                settled=settled,
            )
        )

    async def sync_source_report(self, conn: Document, sr: Document) -> None:
        """One run (or the rest of an interrupted one). Never raises for an API's misbehaviour:
        the outcome is written on the source report.

        The run's correlation id is the one of the request that asked for it (a resumed run keeps
        its own), so an HTTP sync request can be followed into this background work."""
        state = await self.db[COLLECTIONS.sync_state].find_one({"_id": str(sr["_id"])}) or {}
        run = cast(dict[str, Any] | None, state.get("run"))
        correlation = str((run or {}).get("correlation_id") or sr.get("sync_correlation_id") or uuid.uuid4().hex)
        with correlated(correlation):
            await self._sync(conn, sr, state, run, correlation)

    async def _sync(
        self, conn: Document, sr: Document, state: Document, run: dict[str, Any] | None, correlation: str
    ) -> None:
        sr_id = str(sr["_id"])
        kind = cast(Kind, conn["kind"])
        states = self.db[COLLECTIONS.sync_state]
        high_water = _as_date(state["high_water"]) if state.get("high_water") else None
        try:
            puller = build_puller(self.svc, conn)
        except (CredentialsError, ValueError) as exc:
            await self.fail(sr, f"{kind}: {exc}", correlation)
            return
        try:
            if run is None:
                window, mode = plan_window(
                    _as_date(sr["period_start"]),
                    _as_date(sr["period_end"]),
                    high_water,
                    int(cast(int, state.get("runs_since_full", 0))),
                    self.svc.cfg.full_every_runs,
                )
                run = {
                    "cursor": puller.first_cursor,
                    "window_start": window.start.isoformat(),
                    "window_end": window.end.isoformat(),
                    "mode": mode,
                    "pages": 0,
                    "sales": 0,
                    "started_at": now(),
                    "correlation_id": correlation,
                }
                await states.update_one(
                    {"_id": sr_id}, {"$set": {"run": run, "connection_id": conn["_id"]}}, upsert=True
                )
            window = Window(date.fromisoformat(run["window_start"]), date.fromisoformat(run["window_end"]))
            await self._progress(
                sr_id,
                {
                    "status": "processing",
                    "error_message": None,
                    "progress": {
                        "state": "running",
                        "mode": run["mode"],
                        "pages": run["pages"],
                        "sales": run["sales"],
                        "window_start": run["window_start"],
                        "window_end": run["window_end"],
                        "started_at": run["started_at"],
                        "updated_at": now(),
                    },
                },
            )
            await self._refresh_reference(conn, puller)
            ctx = RowContext(
                report_id=str(sr["report_id"]),
                source_report_id=sr_id,
                channel_id=int(cast(int, sr["channel_id"])),
                creator_id=int(cast(int, sr["creator_id"])),
                connection_id=str(conn["_id"]),
                timezone=timezone_of(kind, cast(dict[str, Any], conn.get("options") or {})),
            )
            # None: the listing was read to its end before an interruption; only the end remains.
            cursor: int | None = None if run["cursor"] is None else int(run["cursor"])
            unpublished = 0
            last_publish = time.monotonic()
            while cursor is not None:
                page = await puller.fetch(window, cursor, ctx)
                written = await upsert_rows(self.db, page.rows)
                SALES_SYNCED.labels(api=kind).inc(written)
                if page.high_water is not None and (high_water is None or page.high_water > high_water):
                    high_water = page.high_water
                run["pages"] += 1
                run["sales"] += written
                cursor = page.next_cursor
                await states.update_one(
                    {"_id": sr_id},
                    {
                        "$set": {
                            "run.cursor": cursor,
                            "run.pages": run["pages"],
                            "run.sales": run["sales"],
                            "high_water": high_water.isoformat() if high_water else None,
                        }
                    },
                )
                await self._progress(
                    sr_id,
                    {"progress.pages": run["pages"], "progress.sales": run["sales"], "progress.updated_at": now()},
                )
                unpublished += written
                if cursor is not None and time.monotonic() - last_publish >= self.svc.cfg.publish_every_seconds:
                    await self._publish(sr, unpublished, correlation, settled=False)
                    unpublished, last_publish = 0, time.monotonic()
            if run["mode"] == "incremental":
                period = Window(_as_date(sr["period_start"]), _as_date(sr["period_end"]))
                changed = await puller.late_changes(period, window.start, ctx)
                unpublished += await upsert_rows(self.db, changed)
            finished = now()
            full = run["mode"] == "full"
            await states.update_one(
                {"_id": sr_id},
                {
                    "$set": {
                        "run": None,
                        "last_success_at": finished,
                        "last_mode": run["mode"],
                        "runs_since_full": 0 if full else int(cast(int, state.get("runs_since_full", 0))) + 1,
                    },
                },
            )
            await self._progress(
                sr_id,
                {
                    "status": "success",
                    "progress.state": "done",
                    "progress.finished_at": finished,
                    "last_synced_at": finished,
                },
            )
            await self.db[COLLECTIONS.connections].update_one(
                {"_id": conn["_id"]}, {"$set": {"last_synced_at": finished}}
            )
            await self._publish(sr, unpublished, correlation, settled=True)
            log.info(
                "sync finished",
                extra={
                    "source_report_id": sr_id,
                    "api": kind,
                    "mode": run["mode"],
                    "pages": run["pages"],
                    "sales": run["sales"],
                },
            )
        except ConnectorError as exc:
            await self.fail(sr, str(exc), correlation)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must not leave the run "running" forever; the cursor is kept
            log.exception("sync crashed", extra={"source_report_id": sr_id, "api": kind})
            await self.fail(sr, f"internal error: {type(exc).__name__}", correlation)
        finally:
            await puller.aclose()

    async def fail(self, sr: Document, message: str, correlation: str) -> None:
        """The source report says why; the report is told, so it settles with the rows it has."""
        sr_id = str(sr["_id"])
        log.warning("sync failed", extra={"source_report_id": sr_id, "reason": message})
        await self._progress(
            sr_id,
            {
                "status": "failed",
                "error_message": message,
                "progress.state": "failed",
                "progress.error_message": message,
                "progress.updated_at": now(),
            },
        )
        try:
            await self._publish(sr, 0, correlation, settled=True)
        except Exception:  # the failure is recorded on the source report; the next event settles the report
            log.warning("could not announce the failed sync", extra={"source_report_id": sr_id}, exc_info=True)

    async def _refresh_reference(self, conn: Document, puller: Puller) -> None:
        """Brands and refund reasons change "extremely rarely" (the SweetClub document): cache them
        per connection, refreshed once per `reference_ttl_seconds`."""
        coll = self.db[COLLECTIONS.reference]
        key = f"{conn['_id']}:{conn['kind']}"
        cached = await coll.find_one({"_id": key}, {"updated_at": 1})
        fresh_after = now() - timedelta(seconds=self.svc.cfg.reference_ttl_seconds)
        if cached is not None and cast(datetime, cached["updated_at"]) > fresh_after:
            return
        data = await puller.reference()
        if data is not None:
            await coll.replace_one(
                {"_id": key}, {**data, "connection_id": conn["_id"], "updated_at": now()}, upsert=True
            )


class Scheduler:
    """Per replica: finds work, takes leases, runs it; wakes on `kick()` or every tick."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.engine = SyncEngine(svc)
        self.leases = Leases(svc.db)
        self.owner = f"connectors-{uuid.uuid4().hex[:12]}"
        self._active: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._loop_task: asyncio.Task[None] | None = None
        self._gate = asyncio.Semaphore(max(1, svc.cfg.max_concurrent_syncs))
        self._scheduled_at: float | None = None  # time.monotonic() of the last schedule pass

    def kick(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="connectors-scheduler")

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._active.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("scheduler tick failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.svc.cfg.tick_seconds)

    async def tick(self) -> None:
        db = self.svc.db
        await self._schedule_pass()
        # Two equality queries, each on its own sparse index, rather than one `$or`: every Excel
        # upload is a source report too, and SecantusDB answers the `$or` by scanning them all
        # (182 ms against 2.4 ms at 20 000 source reports, `bench.lookups`), every tick, on every replica.
        sources = db[COLLECTIONS.source_reports]
        requested = await sources.distinct("connection_id", {"sync_requested": True, "kind": "connector"})
        running = await sources.distinct("connection_id", {"progress.state": "running", "kind": "connector"})
        for conn_id in sorted({*requested, *running}, key=str):
            conn_id = str(conn_id)
            if conn_id in self._active or len(self._active) >= self.svc.cfg.max_concurrent_syncs:
                continue
            if await self.leases.acquire(f"connection:{conn_id}", self.owner, self.svc.cfg.lease_seconds):
                task = asyncio.create_task(self._work(conn_id), name=f"sync-{conn_id}")
                self._active[conn_id] = task
                task.add_done_callback(self._forget(conn_id))

    def _forget(self, conn_id: str) -> Callable[[asyncio.Task[None]], None]:
        def done(_: asyncio.Task[None]) -> None:
            self._active.pop(conn_id, None)

        return done

    async def _schedule_pass(self) -> None:
        """Marks the due polls and sets the lag gauge, from one read of the polled connections,
        at most every `schedule_seconds`. On SecantusDB that read scans every connection whatever
        the filter or index (a range on a secondary index is a scan too), so it is done once per
        pass, not once per question per tick (it used to be four, every tick, on every replica)."""
        started = time.monotonic()
        if self._scheduled_at is not None and started - self._scheduled_at < self.svc.cfg.schedule_seconds:
            return
        self._scheduled_at = started
        moment = now()
        polled = (
            await self.svc.db[COLLECTIONS.connections]
            .find(
                {"poll_interval_seconds": {"$gt": 0}},
                {"kind": 1, "poll_interval_seconds": 1, "next_poll_at": 1, "last_synced_at": 1, "created_at": 1},
            )
            .to_list()
        )
        for kind, seconds in sync_lag_seconds(polled, moment).items():
            SYNC_LAG_SECONDS.labels(api=kind).set(seconds)
        for conn in polled:
            if poll_is_due(conn, moment):
                await self._start_poll(conn, moment)

    async def _start_poll(self, conn: Document, moment: datetime) -> None:
        db = self.svc.db
        interval = float(cast(float, conn["poll_interval_seconds"]))
        # Guarded by the old value: of several replicas, one moves the schedule and marks.
        won = await db[COLLECTIONS.connections].update_one(
            {"_id": conn["_id"], "next_poll_at": conn["next_poll_at"]},
            {"$set": {"next_poll_at": moment + timedelta(seconds=interval)}},
        )
        if not won.modified_count:
            return
        # The connection's sources by its index, then chosen here: SecantusDB answers any query
        # holding an `$or` by scanning every source report (one per upload ever made).
        sources = db[COLLECTIONS.source_reports]
        candidates = await sources.find(
            {"connection_id": conn["_id"], "kind": "connector"}, {"period_end": 1, "status": 1}
        ).to_list()
        due_ids = [sr["_id"] for sr in candidates if due_for_poll(sr, moment)]
        if due_ids:
            await sources.update_many(
                {"_id": {"$in": due_ids}}, {"$set": {"sync_requested": True, "sync_correlation_id": None}}
            )

    async def _work(self, conn_id: str) -> None:
        key = f"connection:{conn_id}"
        ttl = self.svc.cfg.lease_seconds
        work = asyncio.current_task()
        assert work is not None

        async def keep_lease() -> None:
            while True:
                await asyncio.sleep(ttl / 3)
                if not await self.leases.renew(key, self.owner, ttl):
                    log.warning("lease lost, stopping the sync", extra={"connection_id": conn_id})
                    work.cancel()
                    return

        renewer = asyncio.create_task(keep_lease())
        try:
            async with self._gate:
                await self._drain(conn_id)
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            with contextlib.suppress(Exception):
                await self.leases.release(key, self.owner)

    async def _drain(self, conn_id: str) -> None:
        db = self.svc.db
        reports = db[COLLECTIONS.source_reports]
        while True:
            conn = await db[COLLECTIONS.connections].find_one({"_id": conn_id})
            if conn is None:
                # Deleted while syncs were asked for or running: each such source report fails with
                # the reason, and its report is told, so it settles instead of staying `processing`.
                # The connection's sources by index, then picked here: an $or would make SecantusDB
                # scan every source report (see `tick`).
                sources = await reports.find({"connection_id": conn_id}).to_list()
                stranded = [s for s in sources if s.get("sync_requested") or _running(s)]
                for orphan in stranded:
                    await reports.update_one({"_id": orphan["_id"]}, {"$set": {"sync_requested": False}})
                    correlation = str(orphan.get("sync_correlation_id") or uuid.uuid4().hex)
                    await self.engine.fail(orphan, "the connection was deleted", correlation)
                return
            sr = await reports.find_one_and_update(
                {"connection_id": conn_id, "kind": "connector", "sync_requested": True},
                {"$set": {"sync_requested": False}},
            )
            if sr is None:
                sr = await reports.find_one(
                    {"connection_id": conn_id, "kind": "connector", "progress.state": "running"}
                )
            if sr is None:
                return
            await self.engine.sync_source_report(conn, sr)
