"""Downloads: the Excel upload template and a report export (.xlsx with a funnel chart, or CSV).

Same access rules as the report endpoint: a report that is unknown or belongs to someone else is
a 404. The builders are pure (`export.py`, `template.py`); this module only reads MongoDB and
streams.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Annotated, Any, Final, Literal
from urllib.parse import quote

import anyio.from_thread
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Query, status
from fastapi.responses import Response, StreamingResponse
from pymongo import ASCENDING
from pymongo.asynchronous.command_cursor import AsyncCommandCursor
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User
from services.gateway.deps import CurrentUser, Db
from services.gateway.export import (
    CSV_SOURCE_COLUMNS,
    build_report_workbook,
    sales_csv_header,
    sales_csv_lines,
    source_prefix,
)
from services.gateway.inputs import links_json
from services.gateway.reports import report_view
from services.gateway.schemas import COMMON_RESPONSES, ErrorSchema
from services.gateway.template import build_template_workbook
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import rows_pipeline

router = APIRouter(prefix="/sales", tags=["exports"], responses=COMMON_RESPONSES)

XLSX_MEDIA_TYPE: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE: Final = "text/csv; charset=utf-8"
# Rows fetched from MongoDB per round trip, and bytes of CSV gathered before one write to the client.
BATCH_ROWS: Final = 2_000
CSV_CHUNK_BYTES: Final = 64 * 1024
# Only the fields the export shows (plus the sort keys), so wide connector documents (`extra`) stay home.
_SALE_PROJECTION: Final = {
    "user_id": 1, "name": 1, "product": 1, "purchase_amount": 1, "username": 1, "photo_url": 1,
    "is_premium": 1, "phone_number": 1, "birthdate": 1, "status": 1, "sub_date": 1, "unsub_date": 1,
    "action_date": 1, "action_period_ms": 1, "invite_link": 1, "row": 1,
}  # fmt: skip
_XLSX_RESPONSE: Final[dict[int | str, dict[str, Any]]] = {
    200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    401: {"model": ErrorSchema},
}


def attachment(filename: str) -> str:
    """A Content-Disposition value that survives any report name: an ASCII fallback plus the
    UTF-8 name (RFC 6266 / 5987), with quotes, slashes and control characters removed."""
    ascii_name = unicodedata.normalize("NFKD", filename).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]+", "_", ascii_name).strip() or "export"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def export_filename(report: Mapping[str, object], extension: str) -> str:
    name = re.sub(r'[\\/:*?"<>|\x00-\x1f]+', "_", str(report.get("name") or "")).strip()[:100]
    return f"{name or 'report'}-{report.get('id')}.{extension}"


@router.get(
    "/template",
    summary="Excel template for POST /sales/create",
    description="The 15 columns of the upload format with drop-down lists for `status` and `is_premium`, "
    "three example rows, and a second sheet describing each column in English and Russian.",
    response_class=Response,
    responses=_XLSX_RESPONSE,
)
async def download_template(user: CurrentUser) -> Response:
    content = await anyio.to_thread.run_sync(build_template_workbook)
    return Response(
        content,
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": attachment("saleswire-template.xlsx")},
    )


@router.get(
    "/analytic/report/{report_id}/export",
    summary="Export a report as .xlsx (metrics, funnel chart, sale rows) or CSV (sale rows)",
    description="`xlsx`: a Summary sheet with every metric, its definition, a funnel chart, the currency, "
    "exchange rates, profit by currency and warnings; a Links sheet with the links table and a bar chart of "
    "profit and cost per link; and one sheet of sale rows per source report. `csv`: the sale rows of every "
    "source report, each line "
    f"starting with {', '.join(CSV_SOURCE_COLUMNS)}; streamed.",
    response_class=Response,
    responses={
        200: {
            "content": {
                XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
                "text/csv": {"schema": {"type": "string"}},
            }
        },
        401: {"model": ErrorSchema},
        404: {"model": ErrorSchema, "description": "unknown report, or someone else's"},
    },
)
async def export_report(
    user: CurrentUser,
    db: Db,
    report_id: Annotated[str, Path(min_length=1, max_length=64)],
    format_: Annotated[Literal["xlsx", "csv"], Query(alias="format")] = "xlsx",
) -> Response:
    report = await report_view(db, user, report_id)
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    sources: list[Mapping[str, object]] = list(report.get("source_reports") or [])
    if format_ == "csv":
        return StreamingResponse(
            _csv_chunks(db, user, sources),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": attachment(export_filename(report, "csv"))},
        )
    # The links table exactly as GET .../links answers it (one read of the kept answer).
    links_answer = await links_json(db, user, report_id)
    links: list[dict[str, Any]] = json.loads(links_answer) if links_answer else []
    cursors = [await _sales_cursor(db, user, str(src["id"])) for src in sources]
    try:
        # The workbook is built in a worker thread (openpyxl is CPU-bound); its row iterables pull
        # batches from the async cursors back on the event loop, so rows are never all in memory.
        content = await anyio.to_thread.run_sync(
            lambda: build_report_workbook(
                report,
                [(src, _rows_from_loop(cursor)) for src, cursor in zip(sources, cursors, strict=True)],
                links,
            )
        )
    finally:
        for cursor in cursors:
            await cursor.close()
    return Response(
        content,
        media_type=XLSX_MEDIA_TYPE,
        headers={"Content-Disposition": attachment(export_filename(report, "xlsx"))},
    )


async def _sales_cursor(db: AsyncDatabase[Document], user: User, source_report_id: str) -> AsyncCommandCursor[Document]:
    # creator_id repeats the ownership check at the chunk level: rows are only ever the caller's.
    # The rows of a source come in status chunks, so the file's order is restored by a sort, run
    # on disk by MongoDB when it outgrows memory; the projection first keeps what it sorts small.
    pipeline = [
        *rows_pipeline({"source_report_id": source_report_id, "creator_id": user.id}),
        {"$project": _SALE_PROJECTION},
        {"$sort": {"row": ASCENDING, "_id": ASCENDING}},
    ]
    return await db[COLLECTIONS.sales].aggregate(pipeline, allowDiskUse=True, batchSize=BATCH_ROWS)


def _rows_from_loop(cursor: AsyncCommandCursor[Document]) -> Iterator[Document]:
    """Iterate an async cursor from a worker thread started by anyio.to_thread."""
    while True:
        batch = anyio.from_thread.run(cursor.to_list, BATCH_ROWS)
        if not batch:
            return
        yield from batch


async def _csv_chunks(
    db: AsyncDatabase[Document], user: User, sources: Sequence[Mapping[str, object]]
) -> AsyncIterator[bytes]:
    parts: list[str] = [sales_csv_header(CSV_SOURCE_COLUMNS)]
    size = len(parts[0])
    for source in sources:
        prefix = source_prefix(source)
        cursor = await _sales_cursor(db, user, str(source["id"]))
        try:
            while batch := await cursor.to_list(BATCH_ROWS):
                for line in sales_csv_lines(batch, prefix):
                    parts.append(line)
                    size += len(line)
                    if size >= CSV_CHUNK_BYTES:
                        yield "".join(parts).encode()
                        parts, size = [], 0
        finally:
            await cursor.close()
    if parts:
        yield "".join(parts).encode()
