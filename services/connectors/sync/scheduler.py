"""The scheduler: per replica, finds work, takes leases, runs it.

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
from datetime import datetime, timedelta
from typing import cast

from services.connectors.sync.engine import SyncEngine
from services.connectors.sync.leases import Leases, now
from services.connectors.sync.planning import due_for_poll, poll_is_due, running, sync_lag_seconds
from services.connectors.sync.services import Services
from services.connectors.telemetry import SYNC_LAG_SECONDS
from shared.mongo import COLLECTIONS, Document
from shared.source_reports import SYNC_RUNNING

log = logging.getLogger(__name__)


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
        # (docs/benchmarks.md, "Lookups that used to scan a collection"), every tick, on every replica.
        sources = db[COLLECTIONS.source_reports]
        requested = await sources.distinct("connection_id", {"sync_requested": True, "kind": "connector"})
        running = await sources.distinct("connection_id", {"progress.state": SYNC_RUNNING, "kind": "connector"})
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
                stranded = [s for s in sources if s.get("sync_requested") or running(s)]
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
                    {"connection_id": conn_id, "kind": "connector", "progress.state": SYNC_RUNNING}
                )
            if sr is None:
                return
            await self.engine.sync_source_report(conn, sr)
