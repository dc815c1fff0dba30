"""ensure_indexes against the real server: idempotent, and it migrates what older releases made."""

from __future__ import annotations

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import COLLECTIONS, Document, ensure_indexes, wrap_row_documents
from shared.sale_chunks import pack


async def test_the_sales_collection_keeps_one_secondary_index(db: AsyncDatabase[Document]) -> None:
    sales = db[COLLECTIONS.sales]
    # as older releases did
    await sales.create_index([("report_id", ASCENDING), ("status", ASCENDING)])
    await sales.create_index([("source_report_id", ASCENDING), ("status", ASCENDING), ("sub_date", ASCENDING)])
    await sales.create_index([("source_report_id", 1), ("status", 1), ("row", 1), ("_id", 1)])
    await ensure_indexes(db)
    await ensure_indexes(db)  # twice: idempotent
    info = await sales.index_information()
    assert set(info) == {"_id_", "source_report_id_1_status_1_seq_1"}
    assert info["source_report_id_1_status_1_seq_1"]["key"] == [("source_report_id", 1), ("status", 1), ("seq", 1)]


async def test_rows_an_older_release_stored_one_per_document_become_chunks(db: AsyncDatabase[Document]) -> None:
    sales = db[COLLECTIONS.sales]
    old_rows = [
        {"_id": f"s:{n}", "source_report_id": "s", "creator_id": 1, "status": "sale", "row": n} for n in range(2, 2503)
    ]
    await sales.insert_many(old_rows)
    await sales.insert_many(pack([{"_id": "t:2", "source_report_id": "t", "status": "lead", "row": 2}]))
    await db[COLLECTIONS.migrations].delete_many({})  # as on a database an older release ran on

    await ensure_indexes(db)

    assert await sales.count_documents({"rows": {"$exists": False}}) == 0
    chunks = await sales.find({"source_report_id": "s"}).to_list()
    assert len(chunks) == len(old_rows)
    assert all(c["rows"] == [old] and c["status"] == "sale" for c, old in zip(
        sorted(chunks, key=lambda c: c["rows"][0]["row"]), old_rows, strict=True
    ))  # fmt: skip
    assert (await sales.find_one({"_id": "t:lead:0"}) or {}).get("rows") == [
        {"_id": "t:2", "source_report_id": "t", "status": "lead", "row": 2}
    ]
    # Done once: a row stored the old way after the marker is not looked for again.
    await sales.insert_one({"_id": "late", "source_report_id": "s"})
    assert await wrap_row_documents(db) == 0
    assert await sales.count_documents({"rows": {"$exists": False}}) == 1


async def test_upload_chunks_are_unique_per_file_and_position(db: AsyncDatabase[Document]) -> None:
    info = await db[f"{COLLECTIONS.uploads_bucket}.chunks"].index_information()
    assert info["files_id_1_n_1"]["unique"] is True


async def test_source_reports_are_found_by_report_connection_and_sync_state(db: AsyncDatabase[Document]) -> None:
    info = await db[COLLECTIONS.source_reports].index_information()
    assert set(info) == {"_id_", "report_id_1", "connection_id_1", "sync_requested_1", "progress.state_1"}
    assert info["sync_requested_1"].get("sparse") and info["progress.state_1"].get("sparse")
