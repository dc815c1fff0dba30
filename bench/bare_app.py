"""The baseline of bench/gateway_load.py: a bare FastAPI app doing the same database reads as the
gateway for the same two routes, written the way FastAPI's tutorial writes them (query parameters
one by one, `response_model` serialisation of the report), and nothing else: no authentication
round trip (the token → user map is read once at start-up), no middleware, no coalescing, no
metrics. A listing page is sent as the gateway sends it, its rows' JSON joined: since 2026-12-07
the reads give each row as its JSON (a listing document holds them so), and parsing them back
only for `response_model` to write them again would charge the baseline for work neither app
needs.

    uvicorn bench.bare_app:app      (SALESWIRE_* environment variables name the database)

Its reads are the gateway's own functions (`services.gateway.reports`), so both apps ask
SecantusDB exactly the same questions per request and the ratio measures what the gateway adds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import FastAPI, Header, HTTPException, Query, Request, Response

from services.gateway import reports
from services.gateway.auth import User, hash_token
from services.gateway.schemas import ReportRequest, ReportSchema, SaleOrderBy, SaleRowSchema
from shared.mongo import COLLECTIONS, make_client
from shared.sale_row_json import json_array
from shared.settings import get_settings


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    mongo = make_client(settings)
    app.state.db = mongo[settings.mongo_db]
    app.state.users = {
        t["_id"]: User(int(t["user_id"]), str(t.get("user_name") or ""))
        async for t in app.state.db[COLLECTIONS.tokens].find({"revoked_at": None})
    }
    yield
    await mongo.close()


app = FastAPI(lifespan=lifespan)


def _user(request: Request, authorization: str) -> User:
    user: User | None = request.app.state.users.get(hash_token(authorization.removeprefix("Bearer ")))
    if user is None:
        raise HTTPException(401, "unknown token")
    return user


@app.post("/sales/analytic/report", response_model=ReportSchema)
async def report(request: Request, body: ReportRequest, authorization: Annotated[str, Header()] = "") -> Any:
    view = await reports.report_view(request.app.state.db, _user(request, authorization), body.report_id)
    if view is None:
        raise HTTPException(404, "report not found")
    return view


@app.get("/sales/analytic/{channel_id}/{source_report_id}/sales", response_model=list[SaleRowSchema])
async def sales(
    request: Request,
    channel_id: int,
    source_report_id: str,
    status: Literal["lead", "sale", "funnel"],
    product: str | None = None,
    is_premium: bool | None = None,
    start_date: datetime | None = None,
    end_date: datetime | None = None,
    is_null_invite_link: bool | None = None,
    order_by: SaleOrderBy | None = None,
    order_dir: Literal["asc", "desc"] = "asc",
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
    offset: Annotated[int, Query(ge=0)] = 0,
    authorization: Annotated[str, Header()] = "",
) -> Any:
    user = _user(request, authorization)
    db = request.app.state.db
    query = reports.sales_query(
        source_report_id, status, product, is_premium, start_date, end_date, is_null_invite_link
    )
    rows = await reports.list_sales(db, reports.owned(query, user, channel_id), order_by, order_dir, limit, offset)
    if not rows and await reports.find_source_report(db, user, channel_id, source_report_id) is None:
        raise HTTPException(404, "source report not found")
    return Response(json_array(rows), media_type="application/json")


@app.get("/ready")
async def ready() -> dict[str, bool]:
    return {"ready": True}
