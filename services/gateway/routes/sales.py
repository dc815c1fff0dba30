"""The four endpoints of the seed contract (`seeds/sales-analytics-api.md`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Path, Query, Request, status
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter
from python_multipart.exceptions import MultipartParseError

from services.gateway import inputs, reports
from services.gateway.creation import NewReport, Unavailable, create_report_from_upload
from services.gateway.deps import BusDep, CurrentUser, Db, Reads, SettingsDep
from services.gateway.schemas import (
    COMMON_RESPONSES,
    MAX_LIMIT,
    CreateSalesResponse,
    ErrorSchema,
    ReportListItem,
    ReportRequest,
    ReportSchema,
    SaleRowSchema,
    SalesExceptionSchema,
    SalesListingQuery,
)
from shared.contracts import ChannelId
from shared.sale_row_json import json_array

router = APIRouter(prefix="/sales", tags=["sales"], responses=COMMON_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"page size, at most {MAX_LIMIT}")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
OrderDir = Literal["asc", "desc"]
# The read routes serialize inside the coalesced read and answer with the bytes (the declared
# response_model still documents them): with the response_model's own rules for the report, and
# sale rows joined from each row's JSON (shared/sale_row_json.py), the same bytes.
REPORT_JSON = TypeAdapter(ReportSchema)


def _money_schema(schema: dict[str, Any]) -> None:
    schema.clear()
    schema.update({"type": "number", "minimum": 0, "maximum": 1e12, "title": "Budget"})


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": "Excel workbook"}},
                }
            }
        },
    }
}


@router.post(
    "/create",
    response_model=CreateSalesResponse,
    summary="Create sales from an Excel file and send them to analysis",
    openapi_extra=_UPLOAD_BODY,
    responses={
        401: {"model": ErrorSchema},
        409: {"model": SalesExceptionSchema, "description": "the file has errors; nothing was stored"},
        413: {"model": ErrorSchema, "description": "the file is larger than the configured limit"},
        415: {"model": ErrorSchema, "description": "the file is not a spreadsheet"},
        503: {"model": ErrorSchema, "description": "the broker is unavailable; nothing was stored"},
    },
)
async def create_sales(
    request: Request,
    user: CurrentUser,
    db: Db,
    bus: BusDep,
    settings: SettingsDep,
    channel_id: Annotated[ChannelId, Query(description="Telegram channel id, e.g. -1001234567890")],
    name: Annotated[str, Query(min_length=1, max_length=200)],
    budget: Annotated[
        Decimal,
        # Read as an exact Decimal; documented as the plain number it is in the query string.
        Query(ge=0, le=Decimal("1e12"), max_digits=16, decimal_places=2, json_schema_extra=_money_schema),
    ],
    currency: Annotated[
        str | None,
        Query(
            max_length=16,
            description="ISO 4217 code or symbol (RUB, ₽, R$, $, EUR) of the budget and of amounts that name "
            "no currency of their own; default: the server's setting (RUB)",
        ),
    ] = None,
    rates: Annotated[
        str | None,
        Query(
            max_length=4000,
            description="exchange rates, report-currency units per one unit: `BRL:16.20,USD:95` "
            "(never the report's own currency)",
        ),
    ] = None,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> Any:
    # Checked before the body is read: a bad parameter costs no upload.
    report_currency = inputs.creation_currency(currency, settings.report_currency)
    exchange_rates = inputs.creation_rates(rates, report_currency)
    try:
        outcome = await create_report_from_upload(
            request,
            db,
            bus,
            settings,
            user,
            NewReport(channel_id, name, budget, report_currency, exchange_rates),
            idempotency_key,
        )
    except MultipartParseError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"malformed multipart body: {exc}") from exc
    except Unavailable as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from exc
    if outcome.status_code == 200:
        return outcome.body
    return JSONResponse(outcome.body, status_code=outcome.status_code)


@router.get("/analytic", response_model=list[ReportListItem], summary="Reports of a channel")
async def list_analytics(
    user: CurrentUser,
    db: Db,
    channel_id: Annotated[ChannelId, Query()],
    order_by: Annotated[Literal["created_at", "name", "id", "channel_id"], Query()] = "created_at",
    order_dir: OrderDir = "desc",
    limit: Limit = 10,
    offset: Offset = 0,
) -> Any:
    return await reports.list_reports(db, user, channel_id, order_by, order_dir, limit, offset)


@router.post(
    "/analytic/report",
    response_model=ReportSchema,
    summary="Full report with every metric",
    responses={404: {"model": ErrorSchema}},
)
async def get_report(user: CurrentUser, db: Db, reads: Reads, body: ReportRequest) -> Response:
    async def serialized() -> bytes | None:
        view = await reports.report_view(db, user, body.report_id)
        return None if view is None else REPORT_JSON.dump_json(REPORT_JSON.validate_python(view))

    # Serialized once per coalesced read: every request that joined it sends the same bytes.
    content = await reads.read(("report", user.id, body.report_id), serialized)
    if content is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    return Response(content, media_type="application/json")


@router.get(
    "/analytic/{channel_id}/{source_report_id}/sales",
    response_model=list[SaleRowSchema],
    summary="Sale rows of one source report",
    responses={404: {"model": ErrorSchema}},
)
async def list_sales(
    user: CurrentUser,
    db: Db,
    reads: Reads,
    channel_id: Annotated[ChannelId, Path()],
    source_report_id: Annotated[str, Path(min_length=1, max_length=64)],
    q: Annotated[SalesListingQuery, Query()],
) -> Response:
    query = reports.sales_query(
        source_report_id, q.status, q.product, q.is_premium, q.start_date, q.end_date, q.is_null_invite_link
    )

    async def page() -> bytes | None:
        # Rows carry their owner and channel, so a page of rows proves the source is the caller's;
        # only an empty page needs the source report itself (missing or foreign → None → 404).
        rows = await reports.list_sales(
            db, reports.owned(query, user, channel_id), q.order_by, q.order_dir, q.limit, q.offset
        )
        if not rows and await reports.find_source_report(db, user, channel_id, source_report_id) is None:
            return None
        return json_array(rows)

    key = ("sales", user.id, channel_id, repr(query), q.order_by, q.order_dir, q.limit, q.offset)
    content = await reads.read(key, page)
    if content is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "source report not found")
    return Response(content, media_type="application/json")
