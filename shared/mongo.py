"""Database wiring: the client, collection names, and the indexes every service relies on."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING, AsyncMongoClient, IndexModel, ReplaceOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from shared.sale_chunks import SALES_INDEX, single
from shared.sale_listing import is_former_part, resized_parts
from shared.settings import Settings

# Documents are dynamic by nature; typed views are built at the edges (schemas, contracts).
Document = dict[str, Any]


# What the services rely on from the database, set here so that no connection string can turn it
# off (keyword options win over the URL's). See docs/scaling.md for the reasons.
# - A write is acknowledged once a majority of the replica set has it: a message is acked only
#   after its effect is durable (SPEC §1), and a write only the old primary had is rolled back
#   when it fails over.
# - Reads go to the primary: the gateway waits for ingest's verdict and reads a report right after
#   analytics wrote it; a lagging secondary would answer with the state before.
# - Reads see only majority-committed data, so nothing is acted on that a failover rolls back.
# - Retryable writes and reads: a primary election mid-write is retried once by the driver. Every
#   write is one document, or an unordered bulk of inserts/upserts keyed by `_id` or a unique
#   index, so no multi-document transaction is needed (none is used).
WRITE_CONCERN: Final = "majority"
READ_PREFERENCE: Final = "primary"
READ_CONCERN: Final = "majority"


def make_client(settings: Settings) -> AsyncMongoClient[Document]:
    return AsyncMongoClient(
        settings.mongo_url,
        tz_aware=True,
        uuidRepresentation="standard",
        serverSelectionTimeoutMS=5_000,
        retryWrites=True,
        retryReads=True,
        w=WRITE_CONCERN,
        readPreference=READ_PREFERENCE,
        readConcernLevel=READ_CONCERN,
    )


@dataclass(frozen=True)
class Collections:
    """Collection names in one place (GridFS bucket `uploads` holds the workbooks)."""

    users: str = "users"
    # `_id` is a user's name, `user_id` the user it names: the unique claim that keeps two
    # concurrent `tokens create NAME` from making two users of one name.
    user_names: str = "user_names"
    tokens: str = "tokens"
    reports: str = "reports"
    source_reports: str = "source_reports"
    sales: str = "sales"
    # One document per report: its links table (SPEC §4.2), written by analytics only, `_id` is
    # the report's id, so the gateway's read is one lookup by primary key (no other index).
    report_links: str = "report_links"
    idempotency: str = "idempotency_keys"
    connections: str = "connections"
    sync_state: str = "sync_state"
    leases: str = "leases"
    reference: str = "reference_data"
    # Results of connector commands (check, SweetClub sale/refund add) the gateway waits for.
    connector_commands: str = "connector_commands"
    # External items the connectors could not read: raw payload and reason (one per item and stage).
    quarantine: str = "connector_quarantine"
    # Markers of one-off data migrations, so that start-up does not search for old data each time.
    migrations: str = "migrations"
    uploads_bucket: str = "uploads"


COLLECTIONS = Collections()


# Dropped by ensure_indexes where an older release created them: the first two indexed rows by
# sub_date, the third indexed one document per row, before rows were packed into chunks.
LEGACY_SALES_INDEXES = (
    "report_id_1_status_1",
    "source_report_id_1_status_1_sub_date_1",
    "source_report_id_1_status_1_row_1__id_1",
)
ROWS_TO_CHUNKS: Final = "sales: one document per row -> chunks"
LISTING_PARTS_RESIZED: Final = "sales: listing parts of 1 000 rows -> 250"
MIGRATION_BATCH: Final = 1_000
MIGRATION_BATCH_BYTES: Final = 16 * 1024 * 1024
DUPLICATE_KEY: Final = 11_000  # MongoDB's code for an `_id` or unique key already taken


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
    # One secondary index on the hottest collection, over chunks of rows (`shared.sale_chunks`).
    # A report's rows are read through its sources (`source_report_id $in`), so a report_id index
    # is not needed. Created before an older one is dropped, so the collection is never without one.
    await db[c.sales].create_indexes([IndexModel(SALES_INDEX)])
    await wrap_row_documents(db)
    await resize_listing_parts(db)
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


async def wrap_row_documents(db: AsyncDatabase[Document]) -> int:
    """Rows an older release stored one per document become chunks of one, in place (same `_id`),
    so that no stored sale goes unread. Runs until a marker says it is done: idempotent and safe
    for several services starting at once (each replaces a row with the same chunk)."""
    marker = db[COLLECTIONS.migrations]
    if await marker.find_one({"_id": ROWS_TO_CHUNKS}) is not None:
        return 0
    sales = db[COLLECTIONS.sales]
    wrapped = 0
    while batch := await sales.find({"rows": {"$exists": False}}, limit=MIGRATION_BATCH).to_list():
        await sales.bulk_write([ReplaceOne({"_id": row["_id"]}, single(row)) for row in batch], ordered=False)
        wrapped += len(batch)
    await marker.update_one({"_id": ROWS_TO_CHUNKS}, {"$set": {"rows_wrapped": wrapped}}, upsert=True)
    return wrapped


async def resize_listing_parts(db: AsyncDatabase[Document]) -> int:
    """Listing parts stored by an older release (shared.sale_listing.FORMER_PART_ROWS rows each) are
    cut into parts of today's size, and removed: until then their pages come from the chunks (the
    new parts' ids are not theirs), never from a part of the wrong size. Runs until a marker says it
    is done; several services starting at once insert the same parts (duplicates ignored) and
    remove the same former ones. Returns the former parts cut."""
    marker = db[COLLECTIONS.migrations]
    if await marker.find_one({"_id": LISTING_PARTS_RESIZED}) is not None:
        return 0
    sales = db[COLLECTIONS.sales]
    resized = 0
    batch: list[Document] = []
    held = 0
    async for doc in sales.find({"listing_part": {"$exists": True}}):
        if not is_former_part(doc):
            continue
        batch.append(doc)
        held += len(doc["listing_part"]["rows"])
        # A part may hold up to LISTING_MAX_BYTES: bounded by bytes, not by count alone.
        if held >= MIGRATION_BATCH_BYTES or len(batch) >= MIGRATION_BATCH:
            resized += await _resize(sales, batch)
            batch, held = [], 0
    resized += await _resize(sales, batch)
    await marker.update_one({"_id": LISTING_PARTS_RESIZED}, {"$set": {"parts_resized": resized}}, upsert=True)
    return resized


async def _resize(sales: AsyncCollection[Document], formers: list[Document]) -> int:
    if not formers:
        return 0
    # Parts another service inserted first are skipped: they are the same parts.
    await insert_new(sales, [part for former in formers for part in resized_parts(former)])
    await sales.delete_many({"_id": {"$in": [former["_id"] for former in formers]}})
    return len(formers)


async def insert_new(collection: AsyncCollection[Document], docs: Sequence[Any]) -> int:
    """Inserts documents whose `_id` is deterministic; those already stored (a redelivered command,
    another service doing the same work) are skipped by the unique `_id`, so nothing is stored
    twice. Returns the documents inserted."""
    if not docs:
        return 0
    try:
        result = await collection.insert_many(docs, ordered=False)
        return len(result.inserted_ids)
    except BulkWriteError as exc:
        if any(error.get("code") != DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
            raise
        return int(exc.details.get("nInserted", 0))
