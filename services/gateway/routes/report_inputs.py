"""A report's exchange rates and per-link costs (replaced, then recomputed), and its links table
(SPEC §4.1, §4.2). Same access rules as the report endpoint: unknown or someone else's is a 404."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Path, status
from fastapi.responses import JSONResponse, Response
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway import inputs, reports
from services.gateway.deps import BusDep, CurrentUser, Db, SettingsDep
from services.gateway.routes.sales import REPORT_JSON
from services.gateway.schemas import (
    COMMON_RESPONSES,
    ExchangeRatesBody,
    LinkCostsBody,
    LinkSchema,
    RecomputePendingSchema,
    ReportSchema,
)
from shared.mongo import Document

router = APIRouter(prefix="/sales/analytic/report", tags=["reports"], responses=COMMON_RESPONSES)

ReportId = Annotated[str, Path(min_length=1, max_length=64)]
_WORDS: dict[inputs.Reason, str] = {"exchange_rates": "exchange rates", "link_costs": "link costs"}
_PENDING: dict[int | str, dict[str, Any]] = {
    202: {"model": RecomputePendingSchema, "description": "saved; analytics is still recomputing the report"}
}


def _pending(report_id: str, version: int, what: str) -> JSONResponse:
    body = RecomputePendingSchema(
        detail=f"the new {what} are saved and the report is being recomputed with them; read it again shortly",
        report_id=report_id,
        inputs_version=version,
    )
    return JSONResponse(body.model_dump(), status_code=status.HTTP_202_ACCEPTED)


def _not_published(what: str) -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        f"the new {what} are saved, but the message broker is unavailable: the report shows them after its "
        "next recompute; send them again to recompute now",
    )


async def _replace_and_wait(
    db: Db,
    bus: BusDep,
    user: CurrentUser,
    settings: SettingsDep,
    report_id: str,
    reason: inputs.Reason,
    values: Mapping[str, Decimal],
    applied: Callable[[AsyncDatabase[Document], str, int], Awaitable[bool]],
) -> JSONResponse | None:
    """Saves the new rates or costs and waits, at most `recompute_wait_seconds`, for analytics to
    apply them: None once applied (the caller answers the fresh figures), else the 202 to read
    again. 404 for a report that is not the caller's; 503 when the broker did not take the
    recompute (the inputs stay saved)."""
    what = _WORDS[reason]
    saved = await inputs.replace_inputs(db, bus, user, report_id, reason, values)
    if saved is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    if not saved.published:
        raise _not_published(what)
    if await inputs.await_applied(db, applied, report_id, saved.inputs_version, settings.recompute_wait_seconds):
        return None
    return _pending(report_id, saved.inputs_version, what)


@router.put(
    "/{report_id}/exchange-rates",
    response_model=ReportSchema,
    summary="Replace a report's exchange rates and recompute it",
    description="The body maps each currency (ISO 4217 code or symbol) to report-currency units per one unit, "
    'e.g. `{"BRL": 16.20, "USD": "95"}`; it replaces every rate (`{}` clears them). Rows in a currency '
    "without a rate are left out of profit and named in `warnings`. Answers the recomputed report, or 202 "
    "when analytics has not finished in time.",
    responses=_PENDING,
)
async def put_exchange_rates(
    user: CurrentUser,
    db: Db,
    bus: BusDep,
    settings: SettingsDep,
    report_id: ReportId,
    body: Annotated[ExchangeRatesBody, Body()],
) -> Any:
    currency = await inputs.report_currency(db, user, report_id)
    if currency is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    rates = inputs.normalise_rates(body, currency)
    pending = await _replace_and_wait(
        db, bus, user, settings, report_id, "exchange_rates", rates, inputs.report_applied
    )
    if pending is not None:
        return pending
    view = await reports.report_view(db, user, report_id)
    if view is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    return Response(REPORT_JSON.dump_json(REPORT_JSON.validate_python(view)), media_type="application/json")


@router.get(
    "/{report_id}/links",
    response_model=list[LinkSchema],
    summary="Each invite link's share of a report",
    description="One entry per invite link (`invite_link` null: rows with no link), largest `subs` first. "
    "Excel rows count for their user's first link; connector rows for the link in their own fields. The links' "
    "subs, sales and profit add up to the report's. `[]` until the report has been computed.",
)
async def get_links(user: CurrentUser, db: Db, report_id: ReportId) -> Response:
    content = await inputs.links_json(db, user, report_id)
    if content is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    return Response(content, media_type="application/json")


@router.put(
    "/{report_id}/links/costs",
    response_model=list[LinkSchema],
    summary="Replace what each invite link's placement cost, and recompute the links",
    description="The body maps invite links to what their placement cost, in the report's currency, e.g. "
    '`{"https://t.me/+AbCdEf": 5000}`; it replaces every cost (`{}` clears them). A link without a cost has '
    "`cost`, `romi`, `cpc`, `cpc_net` and `cac` null. Answers the recomputed links, or 202 when analytics "
    "has not finished in time.",
    responses=_PENDING,
)
async def put_link_costs(
    user: CurrentUser,
    db: Db,
    bus: BusDep,
    settings: SettingsDep,
    report_id: ReportId,
    body: Annotated[LinkCostsBody, Body()],
) -> Any:
    pending = await _replace_and_wait(db, bus, user, settings, report_id, "link_costs", body, inputs.links_applied)
    if pending is not None:
        return pending
    content = await inputs.links_json(db, user, report_id)
    if content is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    return Response(content, media_type="application/json")
