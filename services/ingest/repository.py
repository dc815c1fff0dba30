"""MongoDB adapter of the ingest service: report and source-report state, the uploaded file,
and batched, idempotent writes of sale rows."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from bson import ObjectId
from bson.raw_bson import RawBSONDocument
from gridfs import AsyncGridFSBucket
from pymongo import ReplaceOne
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import COLLECTIONS, Document, insert_new
from shared.reports import REPORT_FAILED, REPORT_PENDING, REPORT_PROCESSING
from shared.sale_chunks import count_pipeline, single
from shared.source_reports import FAILED, INGESTED, PROCESSING, STORING
from shared.totals import Totals, to_document

log = logging.getLogger(__name__)


class IngestRepository:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.reports = db[COLLECTIONS.reports]
        self.sources = db[COLLECTIONS.source_reports]
        self.sales = db[COLLECTIONS.sales]
        self.uploads = AsyncGridFSBucket(db, bucket_name=COLLECTIONS.uploads_bucket)

    async def source_report(self, source_report_id: str) -> Document | None:
        return await self.sources.find_one({"_id": source_report_id})

    async def report(self, report_id: str) -> Document | None:
        return await self.reports.find_one({"_id": report_id})

    async def download(self, file_id: str, target: Path) -> int:
        """Copies the stored upload to a local file, chunk by chunk (never whole in memory)."""
        stream = await self.uploads.open_download_stream(ObjectId(file_id))
        size = 0
        with target.open("wb") as out:
            while chunk := await stream.readchunk():
                out.write(chunk)
                size += len(chunk)
        return size

    async def mark_processing(self, report_id: str, source_report_id: str) -> None:
        now = datetime.now(UTC)
        await self.sources.update_one({"_id": source_report_id}, {"$set": {"status": PROCESSING}})
        await self.reports.update_one(
            {"_id": report_id, "status": REPORT_PENDING}, {"$set": {"status": REPORT_PROCESSING, "updated_at": now}}
        )

    async def reject(self, report_id: str, source_report_id: str, verdict: dict[str, Any]) -> None:
        """Records the file's rejection. The verdict is written last: it is what the gateway waits on."""
        now = datetime.now(UTC)
        await self.sales.delete_many({"source_report_id": source_report_id})
        await self.reports.update_one(
            {"_id": report_id},
            {"$set": {"status": REPORT_FAILED, "error_message": verdict["detail"], "updated_at": now}},
        )
        await self.sources.update_one(
            {"_id": source_report_id}, {"$set": {"status": FAILED, "verdict": verdict, "rows": 0}}
        )

    async def discard_rows(self, source_report_id: str) -> None:
        """Removes what was stored of a file before its verdict (its worker reads it again)."""
        await self.sales.delete_many({"source_report_id": source_report_id})

    async def accept(self, source_report_id: str, rows: int) -> None:
        await self.sources.update_one(
            {"_id": source_report_id},
            {"$set": {"verdict": {"ok": True, "rows": rows}, "status": STORING, "rows": rows}},
        )

    async def mark_ingested(self, source_report_id: str, rows: int, totals: Totals | None = None) -> None:
        done: dict[str, Any] = {"status": INGESTED, "rows": rows, "ingested_at": datetime.now(UTC)}
        if totals is not None:
            done["totals"] = to_document(totals)
        await self.sources.update_one({"_id": source_report_id}, {"$set": done})

    async def insert_new(self, chunks: Sequence[Document]) -> int:
        """Inserts chunks of rows whose `_id` is deterministic; chunks already there (a redelivered
        command) are skipped by the unique `_id`, so replays store nothing twice. Returns chunks
        inserted."""
        return await insert_new(self.sales, chunks)

    async def upsert(self, rows: Sequence[Document]) -> None:
        """Replaces rows, each stored on its own, by `_id`: a re-sent sale (same publisher and
        external id) updates it."""
        if rows:
            await self.sales.bulk_write(
                [ReplaceOne({"_id": r["_id"]}, single(r), upsert=True) for r in rows], ordered=False
            )

    async def ensure_source_report(self, doc: Document) -> None:
        await self.sources.update_one({"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True)

    async def count_rows(self, source_report_id: str) -> int:
        cursor = await self.sales.aggregate(count_pipeline({"source_report_id": source_report_id}))
        counted = await cursor.to_list()
        return int(counted[0]["rows"]) if counted else 0


def read_spool(handle: BinaryIO, batch_size: int) -> Iterator[list[RawBSONDocument]]:
    """Reads concatenated BSON documents back in batches, without decoding them (the driver sends
    the raw bytes as they are)."""
    batch: list[RawBSONDocument] = []
    while header := handle.read(4):
        if len(header) < 4:
            raise ValueError("truncated spool file")
        length = int.from_bytes(header, "little")
        body = handle.read(length - 4)
        if len(body) != length - 4:
            raise ValueError("truncated spool file")
        batch.append(RawBSONDocument(header + body))
        if len(batch) >= batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
