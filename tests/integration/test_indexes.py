"""ensure_indexes against the real server: idempotent, and it migrates what older releases made."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import COLLECTIONS, Document, ensure_indexes


async def test_the_sales_collection_keeps_one_secondary_index(db: AsyncDatabase[Document]) -> None:
    sales = db[COLLECTIONS.sales]
    # as older releases did
    await sales.create_index([("report_id", ASCENDING), ("status", ASCENDING)])
    await sales.create_index([("source_report_id", ASCENDING), ("status", ASCENDING), ("sub_date", ASCENDING)])
    await ensure_indexes(db)
    await ensure_indexes(db)  # twice: idempotent
    info = await sales.index_information()
    assert set(info) == {"_id_", "source_report_id_1_status_1_row_1__id_1"}
    assert info["source_report_id_1_status_1_row_1__id_1"]["key"] == [
        ("source_report_id", 1),
        ("status", 1),
        ("row", 1),
        ("_id", 1),
    ]


async def test_upload_chunks_are_unique_per_file_and_position(db: AsyncDatabase[Document]) -> None:
    info = await db[f"{COLLECTIONS.uploads_bucket}.chunks"].index_information()
    assert info["files_id_1_n_1"]["unique"] is True


async def test_source_reports_are_found_by_report_connection_and_sync_state(db: AsyncDatabase[Document]) -> None:
    info = await db[COLLECTIONS.source_reports].index_information()
    assert set(info) == {"_id_", "report_id_1", "connection_id_1", "sync_requested_1", "progress.state_1"}
    assert info["sync_requested_1"].get("sparse") and info["progress.state_1"].get("sparse")
