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

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status

from services.gateway import connections
from services.gateway.deps import BusDep, CurrentUser, Db, SettingsDep
from services.gateway.schemas import (
    COMMON_RESPONSES,
    AttachIn,
    CommandOut,
    ConnectionIn,
    ConnectionOut,
    ConnectionPatch,
    RefundAddIn,
    SaleAddIn,
    SourceReportOut,
    SyncIn,
    SyncOut,
)
from shared import contracts
from shared.connector_commands import FINAL_COMMAND_STATES
from shared.credentials import Kind
from shared.mongo import Document

router = APIRouter(prefix="/connections", tags=["connections"], responses=COMMON_RESPONSES)

Wait = Annotated[float, Query(ge=0, le=60, description="Seconds to wait for the connector's answer")]


async def _own_connection(db: Db, user: CurrentUser, connection_id: str, kind: Kind | None = None) -> Document:
    doc = await connections.own_connection(db, user, connection_id, kind)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "connection not found")
    return doc


async def _answer_of(db: Db, request_id: str, wait: float, response: Response) -> CommandOut:
    """The command's answer (200), or where it stands after `wait` seconds (202)."""
    out = connections.command_view(await connections.await_command(db, request_id, wait))
    if out.state not in FINAL_COMMAND_STATES:
        response.status_code = status.HTTP_202_ACCEPTED
    return out


# --------------------------------------------------------------------------- connections


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ConnectionOut)
async def create_connection(body: ConnectionIn, user: CurrentUser, db: Db, settings: SettingsDep) -> ConnectionOut:
    return connections.connection_view(await connections.create_connection(db, user, settings, body))


@router.get("", response_model=list[ConnectionOut])
async def list_connections(
    user: CurrentUser, db: Db, channel_id: Annotated[int | None, Query(ge=-(2**63), le=2**63 - 1)] = None
) -> list[ConnectionOut]:
    return [connections.connection_view(d) for d in await connections.list_connections(db, user, channel_id)]


@router.get("/{connection_id}", response_model=ConnectionOut)
async def get_connection(connection_id: str, user: CurrentUser, db: Db) -> ConnectionOut:
    return connections.connection_view(await _own_connection(db, user, connection_id))


@router.patch(
    "/{connection_id}", response_model=ConnectionOut, responses={422: {"description": "incomplete credentials"}}
)
async def update_connection(
    connection_id: str, body: ConnectionPatch, user: CurrentUser, db: Db, settings: SettingsDep
) -> ConnectionOut:
    doc = await _own_connection(db, user, connection_id)
    try:
        return connections.connection_view(await connections.update_connection(db, user, settings, doc, body))
    except connections.IncompleteCredentials as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc


@router.delete("/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_connection(connection_id: str, user: CurrentUser, db: Db) -> Response:
    if not await connections.delete_connection(db, user, connection_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "connection not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{connection_id}/check", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def check_connection(
    connection_id: str, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """A live call with the stored credentials, made by the connectors service."""
    await _own_connection(db, user, connection_id)
    request_id = await connections.new_command(db, user, "check", connection_id)
    try:
        await bus.publish(contracts.CheckConnection(connection_id=connection_id, request_id=request_id))
    except Exception as exc:
        await connections.forget_command(db, request_id)
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the connectors service is unavailable") from exc
    return await _answer_of(db, request_id, wait, response)


@router.get("/{connection_id}/commands/{request_id}", response_model=CommandOut)
async def get_command(connection_id: str, request_id: str, user: CurrentUser, db: Db) -> CommandOut:
    doc = await connections.find_command(db, user, connection_id, request_id)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "command not found")
    return connections.command_view(doc)


# --------------------------------------------------------------------------- source reports and syncs


@router.post("/{connection_id}/sources", status_code=status.HTTP_201_CREATED, response_model=SourceReportOut)
async def attach_to_report(connection_id: str, body: AttachIn, user: CurrentUser, db: Db) -> SourceReportOut:
    """Attach this connection and a period to one of the caller's reports, as a new source report."""
    conn = await _own_connection(db, user, connection_id)
    try:
        return connections.source_view(await connections.attach_source(db, user, conn, body))
    except connections.ReportNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "report not found") from exc
    except connections.OtherChannel as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@router.get("/{connection_id}/sources", response_model=list[SourceReportOut])
async def list_sources(connection_id: str, user: CurrentUser, db: Db) -> list[SourceReportOut]:
    await _own_connection(db, user, connection_id)
    return [connections.source_view(d) for d in await connections.list_sources(db, user, connection_id)]


@router.get("/{connection_id}/sources/{source_report_id}", response_model=SourceReportOut)
async def get_source(connection_id: str, source_report_id: str, user: CurrentUser, db: Db) -> SourceReportOut:
    """Progress of the source report's sync (pages, sales, state), readable while it runs."""
    doc = await connections.find_source(db, user, connection_id, source_report_id)
    if doc is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "source report not found")
    return connections.source_view(doc)


@router.post("/{connection_id}/sync", status_code=status.HTTP_202_ACCEPTED, response_model=SyncOut)
async def sync_connection(
    connection_id: str, user: CurrentUser, db: Db, bus: BusDep, body: SyncIn | None = None
) -> SyncOut:
    """Sync one source report of this connection, or all of them; follow progress on the source reports."""
    await _own_connection(db, user, connection_id)
    source_report_id = body.source_report_id if body is not None else None
    ids = await connections.sources_to_sync(db, user, connection_id, source_report_id)
    if not ids:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no source report to sync: attach the connection to a report")
    await bus.publish(contracts.SyncConnection(connection_id=connection_id, source_report_id=source_report_id))
    return SyncOut(connection_id=connection_id, source_report_ids=ids)


# --------------------------------------------------------------------------- SweetClub commands


async def _sweetclub_command(
    db: Db,
    user: CurrentUser,
    bus: BusDep,
    connection_id: str,
    kind: str,
    message: Callable[[str], contracts.SweetClubSaleAdd | contracts.SweetClubRefundAdd],
    wait: float,
    response: Response,
) -> CommandOut:
    """A write on the caller's SweetClub connection, as a command the connectors service answers."""
    await _own_connection(db, user, connection_id, "sweetclub")
    request_id = await connections.new_command(db, user, kind, connection_id)
    await bus.publish(message(request_id))
    return await _answer_of(db, request_id, wait, response)


@router.post("/{connection_id}/sweetclub/sales", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def sweetclub_sale_add(
    connection_id: str, body: SaleAddIn, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """Register a sale on SweetClub (`api/sale/add`); `result.sales_id` or SweetClub's error."""
    payload = body.model_dump(exclude_none=True)

    def message(request_id: str) -> contracts.SweetClubSaleAdd:
        return contracts.SweetClubSaleAdd(connection_id=connection_id, request_id=request_id, payload=payload)

    return await _sweetclub_command(db, user, bus, connection_id, "sweetclub_sale_add", message, wait, response)


@router.post("/{connection_id}/sweetclub/refunds", response_model=CommandOut, responses={202: {"model": CommandOut}})
async def sweetclub_refund_add(
    connection_id: str, body: RefundAddIn, user: CurrentUser, db: Db, bus: BusDep, response: Response, wait: Wait = 20
) -> CommandOut:
    """Refund a SweetClub sale (`api/refund/add`); `result.success` or SweetClub's error."""
    payload = body.model_dump(exclude_none=True)

    def message(request_id: str) -> contracts.SweetClubRefundAdd:
        return contracts.SweetClubRefundAdd(connection_id=connection_id, request_id=request_id, payload=payload)

    return await _sweetclub_command(db, user, bus, connection_id, "sweetclub_refund_add", message, wait, response)
