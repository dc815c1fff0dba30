"""Database wiring: the client, collection names, and the indexes every service relies on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.settings import Settings

# Documents are dynamic by nature; typed views are built at the edges (schemas, contracts).
Document = dict[str, Any]


def make_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5_000,
        retryWrites=True,
    )


@dataclass(frozen=True)
class Collections:
    """Collection names in one place (GridFS bucket `uploads` holds the workbooks)."""

    users: str = "users"
    tokens: str = "tokens"
    reports: str = "reports"
    source_reports: str = "source_reports"
    sales: str = "sales"
    idempotency: str = "idempotency_keys"
    connections: str = "connections"
    sync_state: str = "sync_state"
    leases: str = "leases"
    reference: str = "reference_data"
    # Results of connector commands (check, SweetClub sale/refund add) the gateway waits for.
    connector_commands: str = "connector_commands"
    uploads_bucket: str = "uploads"


COLLECTIONS = Collections()


# The one secondary index of `sales`, in MongoDB's equality-sort-range order for the sales
# listing: equality on the source and status, then the listing's default order (row, then _id,
# which breaks the tie between connector rows, whose row is null). MongoDB then walks a page of
# rows off the index, either direction, instead of sorting every row of the source for each page.
SALES_INDEX = [("source_report_id", ASCENDING), ("status", ASCENDING), ("row", ASCENDING), ("_id", ASCENDING)]
# Dropped by ensure_indexes where an older release created them (the second ended in sub_date,
# which no query ranges over on its own: a period is action_date, or sub_date without one).
LEGACY_SALES_INDEXES = ("report_id_1_status_1", "source_report_id_1_status_1_sub_date_1")


async def ensure_indexes(db: AsyncDatabase[Document]) -> None:
    """Idempotent; every service calls it at start-up."""
    c = COLLECTIONS
    await db[c.tokens].create_indexes([IndexModel([("user_id", ASCENDING)])])
    await db[c.reports].create_indexes(
        [
            IndexModel([("creator_id", ASCENDING), ("channel_id", ASCENDING), ("created_at", DESCENDING)]),
        ]
    )
    # Source reports are written a few times per upload, so indexes here cost next to nothing, and
    # without them every lookup below scans every upload ever made. Syncs and refunds find a
    # connection's sources by connection_id; the connectors' scheduler, every tick, the sources
    # to sync (sparse: only connector sources carry these fields).
    await db[c.source_reports].create_indexes(
        [
            IndexModel([("report_id", ASCENDING)]),
            IndexModel([("connection_id", ASCENDING)]),
            IndexModel([("sync_requested", ASCENDING)], sparse=True),
            IndexModel([("progress.state", ASCENDING)], sparse=True),
        ]
    )
    # One secondary index on the hottest collection: every index is paid on every row written
    # (on SecantusDB the second one cost ~25 % of the insert rate). A report's rows are read
    # through its sources (`source_report_id $in`), so a report_id index is not needed.
    # Created before an older one is dropped, so the collection is never without an index.
    await db[c.sales].create_indexes([IndexModel(SALES_INDEX)])
    existing = await db[c.sales].index_information()
    for legacy in LEGACY_SALES_INDEXES:
        if legacy in existing:
            await db[c.sales].drop_index(legacy)
    await db[c.connections].create_indexes([IndexModel([("creator_id", ASCENDING)])])
    # The GridFS spec's own indexes: the gateway writes upload chunks itself (bounded buffer),
    # so the driver's lazy index creation on first write never runs.
    await db[f"{c.uploads_bucket}.files"].create_indexes(
        [IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)])]
    )
    await db[f"{c.uploads_bucket}.chunks"].create_indexes(
        [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)]
    )
