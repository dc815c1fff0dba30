"""Where runs are checkpointed (`sync_state`, one document per source report) and where their
progress is shown (the source report's `progress`)."""

from __future__ import annotations

from datetime import date
from typing import Any, cast

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.sync.leases import now
from services.connectors.sync.planning import as_date
from services.connectors.sync.run_state import RunState
from shared.mongo import COLLECTIONS, Document


class SyncStateStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.states = db[COLLECTIONS.sync_state]
        self.sources = db[COLLECTIONS.source_reports]

    async def load(self, source_report_id: str) -> Document:
        return await self.states.find_one({"_id": source_report_id}) or {}

    @staticmethod
    def run_of(state: Document) -> RunState | None:
        run = state.get("run")
        return RunState.from_doc(cast(dict[str, Any], run)) if isinstance(run, dict) else None

    @staticmethod
    def high_water(state: Document) -> date | None:
        return as_date(state["high_water"]) if state.get("high_water") else None

    async def begin(self, source_report_id: str, connection_id: str, run: RunState) -> None:
        await self.states.update_one(
            {"_id": source_report_id}, {"$set": {"run": run.to_doc(), "connection_id": connection_id}}, upsert=True
        )

    async def checkpoint(self, source_report_id: str, run: RunState, high_water: date | None = None) -> None:
        fields: dict[str, Any] = {"run": run.to_doc()}
        if high_water is not None:
            fields["high_water"] = high_water.isoformat()
        await self.states.update_one({"_id": source_report_id}, {"$set": fields})

    async def finish(self, source_report_id: str, run: RunState, runs_since_full: int) -> None:
        await self.states.update_one(
            {"_id": source_report_id},
            {
                "$set": {
                    "run": None,
                    "last_success_at": now(),
                    "last_mode": run.mode,
                    "runs_since_full": 0 if run.mode == "full" else runs_since_full + 1,
                }
            },
        )

    async def show(self, source_report_id: str, fields: dict[str, Any]) -> None:
        await self.sources.update_one({"_id": source_report_id}, {"$set": fields})

    async def show_run(self, source_report_id: str, run: RunState, fields: dict[str, Any] | None = None) -> None:
        """The run's counters, with `fields` in the same write: a reader never sees a status that
        its progress does not match yet."""
        await self.show(
            source_report_id,
            {f"progress.{k}": v for k, v in run.progress().items()} | {"progress.updated_at": now()} | (fields or {}),
        )
