"""Connections to external platforms (SweetClub, Eduzz Órbita, Yandex OFD), their source
reports, syncs, and SweetClub commands.

The gateway never calls an external API. Live calls (credential check, SweetClub sale/refund
add) are commands over the broker to the connectors service, which writes the result into
`connector_commands` under the request id; the route waits for it up to `wait` seconds and
answers 200 with the result, or 202 with the request id to poll at
`GET /connections/{id}/commands/{request_id}`.

Credentials are encrypted (Fernet, `credentials_key`) before they are stored and are never
returned, logged or put into messages (messages carry ids only).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal, cast

from bson import Int64
from fastapi import APIRouter, HTTPException, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from services.gateway.deps import BusDep, CurrentUser, Db, SettingsDep
from services.gateway.schemas import COMMON_RESPONSES
from shared import contracts
from shared.contracts import ChannelId
from shared.credentials import CredentialsBox, Kind, missing_credentials
from shared.mongo import COLLECTIONS, Document
from shared.source_reports import PENDING

router = APIRouter(prefix="/connections", tags=["connections"], responses=COMMON_RESPONSES)

Wait = Annotated[float, Query(ge=0, le=60, description="Seconds to wait for the connector's answer")]


def _check_poll_interval(seconds: int) -> None:
    if 0 < seconds < 10:
        raise ValueError("poll_interval_seconds must be 0 or at least 10")


class ConnectionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Kind
    channel_id: ChannelId
    name: str | None = Field(default=None, max_length=200)
    base_url: str = Field(pattern=r"^https?://[^\s]+$", max_length=500)
    credentials: dict[str, str] = Field(
        description="sweetclub: username, password · eduzz: token · ofd: yandex_key, ofd_key"
    )
    poll_interval_seconds: int = Field(default=900, ge=0, le=7 * 86400, description="0 = no scheduled polling")
    options: dict[str, str | int | float | bool | list[str]] = Field(
        default_factory=dict,
        description="timezone, page_size, fetch_details, rate_per_second, burst, timeout_seconds, company_ids (ofd)",
    )

    @model_validator(mode="after")
    def _credentials_complete(self) -> ConnectionIn:
        if missing := missing_credentials(self.kind, self.credentials):
            raise ValueError(f"credentials for {self.kind} need {', '.join(missing)}")
        _check_poll_interval(self.poll_interval_seconds)
        return self


class ConnectionPatch(BaseModel):
    """What a user may change on a connection; e.g. new credentials after a static token (Eduzz,
    OFD keys) expired or was rotated — the next sync resumes at its saved cursor."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, max_length=200)
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s]+$", max_length=500)
    credentials: dict[str, str] | None = Field(default=None, description="the whole set, as on creation")
    poll_interval_seconds: int | None = Field(default=None, ge=0, le=7 * 86400)
    options: dict[str, str | int | float | bool | list[str]] | None = None

    @model_validator(mode="after")
    def _interval(self) -> ConnectionPatch:
        if self.poll_interval_seconds is not None:
            _check_poll_interval(self.poll_interval_seconds)
        return self


class ConnectionOut(BaseModel):
    id: str
    kind: Kind
    channel_id: int
    name: str | None
    base_url: str
    poll_interval_seconds: int
    options: dict[str, Any]
    created_at: datetime
    last_synced_at: datetime | None = None
    last_check: dict[str, Any] | None = None


class AttachIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    report_id: str = Field(min_length=1, max_length=64)
    period_start: date
    period_end: date

    @model_validator(mode="after")
    def _ordered(self) -> AttachIn:
        if self.period_end < self.period_start:
            raise ValueError("period_end is before period_start")
        return self


class SourceReportOut(BaseModel):
    id: str
    report_id: str
    kind: str
    connection_id: str
    period_start: datetime
    period_end: datetime
    status: str
    progress: dict[str, Any]
    error_message: str | None = None
    creator_id: int
    channel_id: int
    created_at: datetime


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_report_id: str | None = None


class SyncOut(BaseModel):
    connection_id: str
    source_report_ids: list[str]


class CommandOut(BaseModel):
    request_id: str
    kind: str
    state: Literal["queued", "running", "done", "rejected", "failed"]
    result: dict[str, Any] | None = None
    error: str | None = None


class SaleAddIn(BaseModel):
    """The fields of SweetClub's `api/sale/add` (see its document)."""

    model_config = ConfigDict(extra="forbid")

    brand_id: str
    product_type: str
    product_quantity: str
    product_unit: str
    product_price: str
    sale_channel_id: str
    production_date: str | None = None
    delivery_date: str | None = None
    product_in_unit: str | None = None
    not_production_date: str | None = None
    internal_order: str | None = None
    comment: str | None = None
    delivery_type_id: str | None = None
    delivery_address: str | None = None
    delivery_at: str | None = None


class RefundAddIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sale_id: str = Field(min_length=1)
    return_reason_id: str = Field(min_length=1)
    comment: str | None = None


def _connection_out(doc: Document) -> ConnectionOut:
    return ConnectionOut(
        id=str(doc["_id"]),
        kind=cast(Kind, doc["kind"]),
        channel_id=int(cast(int, doc["channel_id"])),
        name=cast(str | None, doc.get("name")),
        base_url=str(doc["base_url"]),
        poll_interval_seconds=int(cast(int, doc.get("poll_interval_seconds", 0))),
        options=cast(dict[str, Any], doc.get("options") or {}),
        created_at=cast(datetime, doc["created_at"]),
        last_synced_at=cast(datetime | None, doc.get("last_synced_at")),
        last_check=cast(dict[str, Any] | None, doc.get("last_check")),
    )


def _source_out(doc: Document) -> SourceReportOut:
    return SourceReportOut(
        id=str(doc["_id"]),
        report_id=str(doc["report_id"]),
        kind=str(doc["kind"]),
        connection_id=str(doc["connection_id"]),
        period_start=cast(datetime, doc["period_start"]),
        period_end=cast(datetime, doc["period_end"]),
        status=str(doc["status"]),
        progress=cast(dict[str, Any], doc.get("progress") or {}),
        error_message=cast(str | None, doc.get("error_message")),
        creator_id=int(cast(int, doc["creator_id"])),
        channel_id=int(cast(int, doc["channel_id"])),
        created_at=cast(datetime, doc["created_at"]),
    )


def _command_out(doc: Document) -> CommandOut:
    return CommandOut(
        request_id=str(doc["_id"]),
        kind=str(doc["kind"]),
        state=cast(Any, doc["state"]),
        result=cast(dict[str, Any] | None, doc.get("result")),
        error=cast(str | None, doc.get("error")),
    )


async def _own_connection(db: Db, user: CurrentUser, connection_id: str, kind: Kind | None = None) -> Document:
    doc = await db[COLLECTIONS.connections].find_one({"_id": connection_id, "creator_id": user.id})
    if doc is None or (kind is not None and doc.get("kind") != kind):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "connection not found")
    return doc


async def _await_command(db: Db, request_id: str, wait: float, response: Response) -> CommandOut:
    deadline = time.monotonic() + wait
    while True:
        doc = await db[COLLECTIONS.connector_commands].find_one({"_id": request_id})
        assert doc is not None
        if doc["state"] in ("done", "rejected", "failed") or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.1)
    out = _command_out(doc)
    if out.state in ("queued", "running"):
        response.status_code = status.HTTP_202_ACCEPTED
    return out


async def _new_command(db: Db, user: CurrentUser, kind: str, connection_id: str) -> str:
    request_id = uuid.uuid4().hex
    await db[COLLECTIONS.connector_commands].insert_one(
        {
            "_id": request_id,
            "kind": kind,
            "connection_id": connection_id,
            "creator_id": user.id,
            "state": "queued",
            "created_at": datetime.now(UTC),
        }
    )
    return request_id


# --------------------------------------------------------------------------- connections


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
async def create_connection(body: ConnectionIn, user: CurrentUser, db: Db, settings: SettingsDep) -> ConnectionOut:
    now = datetime.now(UTC)
    doc: Document = {
        "_id": uuid.uuid4().hex,
        "creator_id": user.id,
        "kind": body.kind,
        "channel_id": Int64(body.channel_id),
        "name": body.name,
        "base_url": body.base_url,
        "credentials": CredentialsBox(settings).seal(body.credentials),
        "options": body.options,
        "poll_interval_seconds": body.poll_interval_seconds,
        "next_poll_at": now if body.poll_interval_seconds else None,
        "created_at": now,
    }
    await db[COLLECTIONS.connections].insert_one(doc)
    return _connection_out(doc)


@router.get("", response_model=list[ConnectionOut])
async def list_connections(
    user: CurrentUser, db: Db, channel_id: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None
) -> list[ConnectionOut]:
    where: dict[str, Any] = {"creator_id": user.id}
    if channel_id is not None:
        where["channel_id"] = Int64(channel_id)
    docs = await db[COLLECTIONS.connections].find(where, {"credentials": 0}).sort("created_at", -1).to_list(1000)
    return [_connection_out(d) for d in docs]


@router.get("/{connection_id}", response_model=ConnectionOut)
async def get_connection(connection_id: str, user: CurrentUser, db: Db) -> ConnectionOut:
    return _connection_out(await _own_connection(db, user, connection_id))


@router.patch(
    "/{connection_id}", response_model=ConnectionOut, responses={422: {"description": "incomplete credentials"}}
)
async def update_connection(
    connection_id: str, body: ConnectionPatch, user: CurrentUser, db: Db, settings: SettingsDep
) -> ConnectionOut:
    doc = await _own_connection(db, user, connection_id)
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"credentials"})
    if body.credentials is not None:
        kind = cast(Kind, doc["kind"])
        if missing := missing_credentials(kind, body.credentials):
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"credentials for {kind} need {', '.join(missing)}"
            )
        changes["credentials"] = CredentialsBox(settings).seal(body.credentials)
    if "poll_interval_seconds" in changes:
        changes["next_poll_at"] = datetime.now(UTC) if changes["poll_interval_seconds"] else None
    if changes:
        await db[COLLECTIONS.connections].update_one({"_id": connection_id, "creator_id": user.id}, {"$set": changes})
        doc.update(changes)
    return _connection_out(doc)


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_connection(connection_id: str, user: CurrentUser, db: Db) -> Response:
    result = await db[COLLECTIONS.connections].delete_one({"_id": connection_id, "creator_id": user.id})
    if result.deleted_count == 0:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "connection not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{connection_id}/check", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def check_connection(
    connection_id: str, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """A live call with the stored credentials, made by the connectors service."""
    await _own_connection(db, user, connection_id)
    request_id = await _new_command(db, user, "check", connection_id)
    try:
        await bus.publish(contracts.CheckConnection(connection_id=connection_id, request_id=request_id))
    except Exception as exc:
        await db[COLLECTIONS.connector_commands].delete_one({"_id": request_id})
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the connectors service is unavailable") from exc
    return await _await_command(db, request_id, wait, response)


@router.get("/{connection_id}/commands/{request_id}", response_model=CommandOut)
async def get_command(connection_id: str, request_id: str, user: CurrentUser, db: Db) -> CommandOut:
    doc = await db[COLLECTIONS.connector_commands].find_one(
        {"_id": request_id, "connection_id": connection_id, "creator_id": user.id}
    )
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "command not found")
    return _command_out(doc)


# --------------------------------------------------------------------------- source reports and syncs


@router.post("/{connection_id}/sources", status_code=status.HTTP_201_CREATED, response_model=SourceReportOut)
async def attach_to_report(connection_id: str, body: AttachIn, user: CurrentUser, db: Db) -> SourceReportOut:
    """Attach this connection and a period to one of the caller's reports, as a new source report."""
    conn = await _own_connection(db, user, connection_id)
    report = await db[COLLECTIONS.reports].find_one({"_id": body.report_id, "creator_id": user.id})
    if report is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found")
    if int(cast(int, report["channel_id"])) != int(cast(int, conn["channel_id"])):
        raise HTTPException(status.HTTP_409_CONFLICT, "the connection belongs to another channel than the report")
    doc: Document = {
        "_id": uuid.uuid4().hex,
        "report_id": body.report_id,
        "kind": "connector",
        "connection_id": connection_id,
        "source": conn["kind"],
        "period_start": datetime.combine(body.period_start, datetime.min.time(), UTC),
        "period_end": datetime.combine(body.period_end, datetime.min.time(), UTC),
        "status": PENDING,
        "progress": {"state": "idle", "pages": 0, "sales": 0},
        "error_message": None,
        "creator_id": user.id,
        "channel_id": Int64(int(cast(int, conn["channel_id"]))),
        "created_at": datetime.now(UTC),
        "sync_requested": False,
    }
    await db[COLLECTIONS.source_reports].insert_one(doc)
    return _source_out(doc)


@router.get("/{connection_id}/sources", response_model=list[SourceReportOut])
async def list_sources(connection_id: str, user: CurrentUser, db: Db) -> list[SourceReportOut]:
    await _own_connection(db, user, connection_id)
    docs = (
        await db[COLLECTIONS.source_reports]
        .find({"connection_id": connection_id, "creator_id": user.id, "kind": "connector"})
        .sort("created_at", -1)
        .to_list(1000)
    )
    return [_source_out(d) for d in docs]


@router.get("/{connection_id}/sources/{source_report_id}", response_model=SourceReportOut)
async def get_source(connection_id: str, source_report_id: str, user: CurrentUser, db: Db) -> SourceReportOut:
    """Progress of the source report's sync (pages, sales, state), readable while it runs."""
    doc = await db[COLLECTIONS.source_reports].find_one(
        {"_id": source_report_id, "connection_id": connection_id, "creator_id": user.id}
    )
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "source report not found")
    return _source_out(doc)


@router.post("/{connection_id}/sync", status_code=status.HTTP_202_ACCEPTED, response_model=SyncOut)
async def sync_connection(
    connection_id: str, user: CurrentUser, db: Db, bus: BusDep, body: SyncIn | None = None
) -> SyncOut:
    """Sync one source report of this connection, or all of them; follow progress on the source reports."""
    await _own_connection(db, user, connection_id)
    where: dict[str, Any] = {"connection_id": connection_id, "creator_id": user.id, "kind": "connector"}
    if body is not None and body.source_report_id is not None:
        where["_id"] = body.source_report_id
    ids = [str(d["_id"]) for d in await db[COLLECTIONS.source_reports].find(where, {"_id": 1}).to_list(1000)]
    if not ids:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no source report to sync: attach the connection to a report")
    source_report_id = body.source_report_id if body is not None else None
    await bus.publish(contracts.SyncConnection(connection_id=connection_id, source_report_id=source_report_id))
    return SyncOut(connection_id=connection_id, source_report_ids=ids)


# --------------------------------------------------------------------------- SweetClub commands


@router.post("/{connection_id}/sweetclub/sales", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def sweetclub_sale_add(
    connection_id: str, body: SaleAddIn, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """Register a sale on SweetClub (`api/sale/add`); `result.sales_id` or SweetClub's error."""
    await _own_connection(db, user, connection_id, "sweetclub")
    request_id = await _new_command(db, user, "sweetclub_sale_add", connection_id)
    payload = {k: v for k, v in body.model_dump(exclude_none=True).items()}
    await bus.publish(contracts.SweetClubSaleAdd(connection_id=connection_id, request_id=request_id, payload=payload))
    return await _await_command(db, request_id, wait, response)


@router.post("/{connection_id}/sweetclub/refunds", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def sweetclub_refund_add(
    connection_id: str, body: RefundAddIn, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """Refund a SweetClub sale (`api/refund/add`); `result.success` or SweetClub's error."""
    await _own_connection(db, user, connection_id, "sweetclub")
    request_id = await _new_command(db, user, "sweetclub_refund_add", connection_id)
    payload = body.model_dump(exclude_none=True)
    await bus.publish(contracts.SweetClubRefundAdd(connection_id=connection_id, request_id=request_id, payload=payload))
    return await _await_command(db, request_id, wait, response)
