"""The `source_reports` document: one per input of a report (an uploaded Excel file, the `sale
recorded` events of one publisher, one connector sync), written by whichever service brings that
input and read by analytics (is the report settled?) and the gateway (its list of sources).

Its life, by kind:

    excel      pending (gateway) → processing → storing → ingested (ingest)          or → failed
    event      ingested (ingest, on the first event of a publisher)
    connector  pending (gateway, attached) → processing → success (connectors, per run) or → failed

A report is settled when every one of its sources is in a final state.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final, Literal, TypedDict

from bson import Int64

SourceKind = Literal["excel", "event", "connector"]
SourceStatus = Literal["pending", "processing", "storing", "ingested", "success", "failed"]

PENDING: Final[SourceStatus] = "pending"
PROCESSING: Final[SourceStatus] = "processing"
STORING: Final[SourceStatus] = "storing"
INGESTED: Final[SourceStatus] = "ingested"
SUCCESS: Final[SourceStatus] = "success"
FAILED: Final[SourceStatus] = "failed"
# Excel sources end "ingested", connector syncs "success"; either may end "failed".
FINAL_SOURCE_STATES: Final[frozenset[SourceStatus]] = frozenset({INGESTED, SUCCESS, FAILED})

# A connector source's `progress.state`: where its current sync run is (the gateway attaches it
# idle; the connectors service queues, runs and ends each run). Apart from `status`: a run that
# fails while enriching leaves the source `success` with its listing's figures.
SyncState = Literal["idle", "queued", "running", "done", "failed"]
SYNC_IDLE: Final[SyncState] = "idle"
SYNC_QUEUED: Final[SyncState] = "queued"
SYNC_RUNNING: Final[SyncState] = "running"
SYNC_DONE: Final[SyncState] = "done"
SYNC_FAILED: Final[SyncState] = "failed"


class SourceReport(TypedDict, total=False):
    """The fields a source report may hold; which ones depends on its kind (see the writers)."""

    _id: str
    report_id: str
    creator_id: int
    channel_id: Int64
    kind: SourceKind
    name: str
    status: SourceStatus
    rows: int | None
    created_at: datetime
    # excel: the stored upload, ingest's verdict (what the gateway waits on) and folded totals
    file_id: str
    size: int
    verdict: dict[str, Any] | None
    ingested_at: datetime
    totals: dict[str, Any]
    # connector: the connection, the period it covers and its sync progress
    connection_id: str
    source: str  # the platform: sweetclub, eduzz, ofd
    period_start: datetime
    period_end: datetime
    sync_requested: bool
    run: dict[str, Any] | None
    error_message: str | None
    progress: dict[str, Any]
    last_synced_at: datetime
