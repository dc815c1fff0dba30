"""The export and template routes over a real MongoDB (the session's SecantusDB): access rules, the
workbook built from stored rows through the worker-thread bridge, and the streamed CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import openpyxl
import pytest
from bson import Decimal128, Int64
from fastapi import FastAPI
from openpyxl.chart import BarChart
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import create_user_token
from services.gateway.coalesce import ReadCoalescer
from services.gateway.export import CSV_SOURCE_COLUMNS, LINKS_SHEET, SALE_COLUMNS, SUMMARY_SHEET
from services.gateway.routes import exports
from shared.links_answer import LINKS_ANSWER_COLLECTION, answer_document
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import pack

CHANNEL = -1001234567890
T0 = datetime(2024, 1, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
async def client(db: AsyncDatabase[Document]) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.include_router(exports.router)
    app.state.db = db  # what the lifespan of services.gateway.main sets
    app.state.reads = ReadCoalescer()  # and what create_app sets
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as http:
        yield http


async def seed_report(db: AsyncDatabase[Document], creator_id: int, report_id: str, rows: int) -> None:
    await db[COLLECTIONS.reports].insert_one({
        "_id": report_id, "name": "Winter / sale", "created_at": T0, "updated_at": T0,
        "channel_id": Int64(CHANNEL), "status": "success", "budget": Decimal128("1000"), "creator_id": creator_id,
        "subs": rows, "funnel": 2, "leads": 3, "sales": rows - 5, "profit": Decimal128("250.5"),
        "romi": Decimal128("-74.95"),
    })  # fmt: skip
    for n, sid in enumerate((f"{report_id}-a", f"{report_id}-b")):
        await db[COLLECTIONS.source_reports].insert_one({
            "_id": sid, "report_id": report_id, "creator_id": creator_id, "channel_id": Int64(CHANNEL),
            "kind": "excel", "name": "sales.xlsx", "status": "success", "rows": rows,
            "created_at": T0 + timedelta(seconds=n),
        })  # fmt: skip
        # Inserted in reverse: the export must order by Excel row.
        await db[COLLECTIONS.sales].insert_many(pack([
            {
                "_id": f"{sid}:{row}", "report_id": report_id, "source_report_id": sid, "channel_id": Int64(CHANNEL),
                "creator_id": creator_id, "source": "excel", "row": row, "user_id": Int64(1_000 * (n + 1) + row),
                "name": f"User {row}", "is_premium": False, "status": "sale",
                "purchase_amount": Decimal128("10.10"), "sub_date": T0,
                "action_date": T0 + timedelta(hours=12), "action_period_ms": Int64(43_200_000),
                "extra": {"big": "x" * 100},
            }
            for row in range(rows + 1, 1, -1)
        ]))  # fmt: skip


async def test_template_needs_a_token_and_is_a_workbook(client: httpx.AsyncClient, db) -> None:
    assert (await client.get("/sales/template")).status_code == 401
    _, token = await create_user_token(db, "alice")
    response = await client.get("/sales/template", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == exports.XLSX_MEDIA_TYPE
    assert "saleswire-template.xlsx" in response.headers["content-disposition"]
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    assert wb.worksheets[0]["A1"].value == "user_id"


async def test_xlsx_export_from_stored_rows(client: httpx.AsyncClient, db) -> None:
    user, token = await create_user_token(db, "alice")
    await seed_report(db, user.id, "rep-x", rows=30)
    entry = {"invite_link": "https://t.me/+x", "subs": 30, "sales": 25, "profit": Decimal128("252.5")}
    await db[LINKS_ANSWER_COLLECTION].insert_one({"_id": "rep-x", **answer_document(user.id, 0, T0, [entry])})
    response = await client.get("/sales/analytic/report/rep-x/export", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == exports.XLSX_MEDIA_TYPE
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="Winter _ sale-rep-x.xlsx"')
    wb = openpyxl.load_workbook(io.BytesIO(response.content))
    assert wb.sheetnames == [SUMMARY_SHEET, LINKS_SHEET, "sales.xlsx", "sales.xlsx (2)"]
    chart = wb[SUMMARY_SHEET]._charts[0]
    assert isinstance(chart, BarChart)
    # The links table as the links endpoint answers it.
    link_row = next(wb[LINKS_SHEET].iter_rows(min_row=2, max_row=2, values_only=True))
    assert link_row[:2] == ("https://t.me/+x", 30) and link_row[8] == pytest.approx(252.5)
    assert isinstance(wb[LINKS_SHEET]._charts[0], BarChart)
    ws = wb["sales.xlsx"]
    assert [c.value for c in ws[1]] == list(SALE_COLUMNS)
    assert [r[0] for r in ws.iter_rows(min_row=2, max_col=1, values_only=True)] == [1_000 + r for r in range(2, 32)]
    assert ws.cell(row=2, column=SALE_COLUMNS.index("action_period") + 1).value == pytest.approx(0.5)
    assert ws.cell(row=2, column=SALE_COLUMNS.index("purchase_amount") + 1).value == pytest.approx(10.10)
    second = wb["sales.xlsx (2)"]
    assert second.max_row == 31
    assert second["A2"].value == 2_002


async def test_csv_export_streams_every_source(client: httpx.AsyncClient, db, monkeypatch) -> None:
    monkeypatch.setattr(exports, "BATCH_ROWS", 7)  # several round trips per source
    monkeypatch.setattr(exports, "CSV_CHUNK_BYTES", 500)  # several chunks
    user, token = await create_user_token(db, "alice")
    await seed_report(db, user.id, "rep-c", rows=20)
    response = await client.get(
        "/sales/analytic/report/rep-c/export", params={"format": "csv"}, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    # httpx's ASGI transport gathers the body, so the chunking is checked on the generator itself.
    sources = [{"id": "rep-c-a", "name": "sales.xlsx", "kind": "excel"}, {"id": "rep-c-b", "name": "b", "kind": "x"}]
    chunks = [chunk async for chunk in exports._csv_chunks(db, user, sources)]
    assert len(chunks) > 3
    assert all(len(c) < 500 + 300 for c in chunks)  # a chunk is flushed soon after the threshold
    assert b"".join(chunks).count(b"\r\n") == 41
    table = list(csv.reader(io.StringIO(response.content.decode("utf-8"))))
    assert table[0] == [*CSV_SOURCE_COLUMNS, *SALE_COLUMNS]
    assert len(table) == 1 + 2 * 20
    assert [r[0] for r in table[1:]] == ["rep-c-a"] * 20 + ["rep-c-b"] * 20
    assert [int(r[3]) for r in table[1:21]] == [1_000 + r for r in range(2, 22)]
    assert table[1][3 + SALE_COLUMNS.index("purchase_amount")] == "10.10"


async def test_unknown_and_foreign_reports_are_404(client: httpx.AsyncClient, db) -> None:
    owner, _ = await create_user_token(db, "owner")
    await seed_report(db, owner.id, "rep-o", rows=6)
    _, intruder = await create_user_token(db, "intruder")
    headers = {"Authorization": f"Bearer {intruder}"}
    for fmt in ("xlsx", "csv"):
        foreign = await client.get("/sales/analytic/report/rep-o/export", params={"format": fmt}, headers=headers)
        assert foreign.status_code == 404
        unknown = await client.get("/sales/analytic/report/nope/export", params={"format": fmt}, headers=headers)
        assert unknown.status_code == 404
    bad = await client.get("/sales/analytic/report/rep-o/export", params={"format": "pdf"}, headers=headers)
    assert bad.status_code == 422
    assert (await client.get("/sales/analytic/report/rep-o/export")).status_code == 401
