"""The sync engine, split by job: `planning` (what a run reads; which sources a poll re-syncs),
`run_state` (one run, typed), `state_store` (checkpoints and progress), `rows_store` (rows,
enrichment markers, quarantine), `enrichment` (detail calls), `engine` (one run), `scheduler`
(who runs what), `leases`, `session` (a platform's token kept on its connection)."""

from __future__ import annotations

from services.connectors.sync.engine import SyncEngine
from services.connectors.sync.planning import due_for_poll, plan_window, poll_is_due, sync_lag_seconds
from services.connectors.sync.scheduler import Scheduler
from services.connectors.sync.services import Services, build_puller

__all__ = [
    "Scheduler",
    "Services",
    "SyncEngine",
    "build_puller",
    "due_for_poll",
    "plan_window",
    "poll_is_due",
    "sync_lag_seconds",
]
