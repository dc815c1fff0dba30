"""The gateway's GridFS writer: what it stores any GridFS reader reads back byte for byte, it
writes as it goes (never the whole upload in memory), and an aborted upload leaves nothing."""

from __future__ import annotations

import os

import pytest
from gridfs import AsyncGridFSBucket
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.uploads import CHUNK_BYTES, FLUSH_CHUNKS, GridFSWriter
from shared.mongo import COLLECTIONS, Document

BUCKET = COLLECTIONS.uploads_bucket


@pytest.mark.parametrize(
    "size", [1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, FLUSH_CHUNKS * CHUNK_BYTES + 7, 3_000_001]
)
async def test_the_driver_reads_back_what_the_writer_stored(db: AsyncDatabase[Document], size: int) -> None:
    content = os.urandom(size)
    writer = GridFSWriter(db, BUCKET, "campaign.xlsx", {"report_id": "r1"})
    # Odd piece sizes, as a multipart parser hands them over.
    for start in range(0, size, 65_521):
        await writer.write(content[start : start + 65_521])
    await writer.close()

    bucket = AsyncGridFSBucket(db, bucket_name=BUCKET)
    stream = await bucket.open_download_stream(writer.file_id)
    assert await stream.read() == content
    assert stream.filename == "campaign.xlsx"
    assert stream.metadata == {"report_id": "r1"}
    assert stream.length == size


async def test_chunks_reach_the_database_while_the_upload_is_still_arriving(db: AsyncDatabase[Document]) -> None:
    writer = GridFSWriter(db, BUCKET, "big.xlsx", {})
    piece = os.urandom(64 * 1024)
    for _ in range(160):  # 10 MB, not yet closed
        await writer.write(piece)
    stored = await db[f"{BUCKET}.chunks"].count_documents({"files_id": writer.file_id})
    held = 160 * len(piece) - stored * CHUNK_BYTES
    # The driver's own GridIn would still hold all 10 MB here; ours holds under one flush batch.
    assert held < (FLUSH_CHUNKS + 1) * CHUNK_BYTES
    # No files document until close: a reader never sees a half-written upload.
    assert await db[f"{BUCKET}.files"].count_documents({"_id": writer.file_id}) == 0
    await writer.abort()


async def test_an_aborted_upload_leaves_no_chunks(db: AsyncDatabase[Document]) -> None:
    writer = GridFSWriter(db, BUCKET, "bad.xlsx", {})
    await writer.write(os.urandom(6 * CHUNK_BYTES))
    await writer.abort()
    assert await db[f"{BUCKET}.chunks"].count_documents({"files_id": writer.file_id}) == 0
    assert await db[f"{BUCKET}.files"].count_documents({"_id": writer.file_id}) == 0
