"""Handlers' logic for the commands the connectors consume.

Results of request/response commands (check, SweetClub sale/refund add) go to the
`connector_commands` collection under the request id; the gateway created that document
("queued") and waits on it. States: queued → running → done | rejected (the API said no, its
error kept) | failed (could not get an answer). A SweetClub write's `result.outcome` says what
happened: "created", "already created", "refunded", "already refunded" (`writes.py`).

A write is never sent blind, not even by a redelivered command: a sale/add stores its
idempotency key (`internal_order`) and the platform's highest sale id on the command document
before it is sent, so a delivery after a crash during the call looks the sale up first. A
refund is safe to deliver again: a refused refund of a refunded sale is "already refunded".
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, cast

from pydantic import ValidationError
from pymongo.errors import DuplicateKeyError

from services.connectors.platforms.base.http import ConnectorError
from services.connectors.platforms.base.registry import CredentialsError
from services.connectors.platforms.base.rows import row_id
from services.connectors.platforms.sweetclub.client import SweetClubClient
from services.connectors.platforms.sweetclub.models import SaleAddForm
from services.connectors.platforms.sweetclub.puller import make_client
from services.connectors.platforms.sweetclub.writes import WriteOutcome, create_sale, refund_sale
from services.connectors.sync.leases import now
from services.connectors.sync.services import Services, build_puller, puller_args
from shared import contracts, source_reports
from shared.broker import PermanentError
from shared.connector_commands import (
    COMMAND_DONE,
    COMMAND_FAILED,
    COMMAND_QUEUED,
    COMMAND_REJECTED,
    COMMAND_RUNNING,
    CommandState,
)
from shared.mongo import COLLECTIONS, Document
from shared.report_versions import bump_rows_version

log = logging.getLogger(__name__)

Outcome = tuple[CommandState, dict[str, Any] | None, str | None]  # state, result, error


async def request_sync(svc: Services, msg: contracts.SyncConnection) -> int:
    """Flag the source reports to sync; the scheduler (any replica) does the work under a lease."""
    reports = svc.db[COLLECTIONS.source_reports]
    where: dict[str, Any] = {"connection_id": msg.connection_id, "kind": "connector"}
    if msg.source_report_id is not None:
        where["_id"] = msg.source_report_id
    result = await reports.update_many(
        where,
        {
            "$set": {
                "sync_requested": True,
                "sync_correlation_id": msg.correlation_id,
                "progress.state": source_reports.SYNC_QUEUED,
                "progress.queued_at": now(),
            }
        },
    )
    if msg.source_report_id is not None and result.matched_count == 0:
        raise PermanentError(f"no connector source report {msg.source_report_id} for connection {msg.connection_id}")
    return result.matched_count


async def _claim(svc: Services, request_id: str, kind: str, connection_id: str) -> Document | None:
    """The command document when this delivery should execute the command (a redelivery of a
    command left `running` gets it too, with what the first delivery noted), else None."""
    coll = svc.db[COLLECTIONS.connector_commands]
    claimed = await coll.find_one_and_update(
        {"_id": request_id, "state": COMMAND_QUEUED}, {"$set": {"state": COMMAND_RUNNING, "started_at": now()}}
    )
    if claimed is not None:
        return claimed
    existing = await coll.find_one({"_id": request_id})
    if existing is None:  # published by someone who does not wait on a result document
        doc = {
            "_id": request_id,
            "kind": kind,
            "connection_id": connection_id,
            "state": COMMAND_RUNNING,
            "created_at": now(),
            "started_at": now(),
        }
        try:
            await coll.insert_one(doc)
        except DuplicateKeyError:
            return None
        return doc
    return existing if existing.get("state") == COMMAND_RUNNING else None


async def _finish(svc: Services, request_id: str, outcome: Outcome) -> None:
    state, result, error = outcome
    await svc.db[COLLECTIONS.connector_commands].update_one(
        {"_id": request_id}, {"$set": {"state": state, "result": result, "error": error, "finished_at": now()}}
    )


async def _connection(svc: Services, connection_id: str, kind: str | None = None) -> Document | None:
    conn = await svc.db[COLLECTIONS.connections].find_one({"_id": connection_id})
    if conn is None or (kind is not None and conn.get("kind") != kind):
        return None
    return conn


async def check(svc: Services, msg: contracts.CheckConnection) -> None:
    if await _claim(svc, msg.request_id, "check", msg.connection_id) is None:
        return
    conn = await _connection(svc, msg.connection_id)
    if conn is None:
        await _finish(svc, msg.request_id, (COMMAND_FAILED, None, "unknown connection"))
        return
    try:
        puller = build_puller(svc, conn)
    except (CredentialsError, ValueError) as exc:
        await _finish(svc, msg.request_id, (COMMAND_REJECTED, {"ok": False}, str(exc)))
        return
    try:
        detail = await puller.check()
        outcome: Outcome = (COMMAND_DONE, {"ok": True, "detail": detail}, None)
    except ConnectorError as exc:
        outcome = (COMMAND_REJECTED, {"ok": False}, str(exc))
    finally:
        await puller.aclose()
    await _finish(svc, msg.request_id, outcome)
    last_check = {
        "ok": outcome[0] == COMMAND_DONE,
        "message": outcome[2] or (outcome[1] or {}).get("detail"),
        "at": now(),
    }
    await svc.db[COLLECTIONS.connections].update_one({"_id": msg.connection_id}, {"$set": {"last_check": last_check}})


def _outcome(write: WriteOutcome) -> Outcome:
    result: dict[str, Any] = {"outcome": write.result, "sale_id": write.sale_id, **write.detail}
    if write.message:
        result["success" if write.ok else "message"] = write.message
    if write.platform_error is not None:
        result["error"] = write.platform_error
    result["attempts"], result["lookups"] = write.attempts, write.lookups
    return (COMMAND_DONE, result, None) if write.ok else (COMMAND_REJECTED, result, write.message or "refused")


async def _sweetclub_call(
    svc: Services,
    request_id: str,
    connection_id: str,
    kind: str,
    call: Callable[[SweetClubClient, Document], Awaitable[Outcome]],
) -> Outcome | None:
    command = await _claim(svc, request_id, kind, connection_id)
    if command is None:
        return None
    conn = await _connection(svc, connection_id, "sweetclub")
    if conn is None:
        outcome: Outcome = (COMMAND_FAILED, None, "unknown SweetClub connection")
    else:
        try:
            client = make_client(puller_args(svc, conn))
        except (CredentialsError, ValueError) as exc:
            outcome = (COMMAND_FAILED, None, str(exc))
        else:
            try:
                outcome = await call(client, command)
            except ValidationError as exc:
                outcome = (
                    COMMAND_REJECTED,
                    None,
                    f"invalid payload: {exc.error_count()} errors, first: {exc.errors()[0]['loc']}",
                )
            except ConnectorError as exc:
                outcome = (COMMAND_FAILED, None, f"outcome unknown after checking: {exc}")
            finally:
                await client.aclose()
    await _finish(svc, request_id, outcome)
    return outcome


async def sweetclub_command(svc: Services, body: dict[str, Any]) -> None:
    """Dispatch by `kind`; an unknown or invalid message raises ValidationError (dead-lettered)."""
    if body.get("kind") == "sweetclub_refund_add":
        refund = contracts.SweetClubRefundAdd.model_validate(body)
        outcome = await _sweetclub_call(
            svc, refund.request_id, refund.connection_id, "sweetclub_refund_add", _refund_call(refund)
        )
        if outcome is not None and outcome[0] == COMMAND_DONE:
            await apply_refund(svc, refund)
        return
    add = contracts.SweetClubSaleAdd.model_validate(body)
    await _sweetclub_call(svc, add.request_id, add.connection_id, "sweetclub_sale_add", _add_call(svc, add))


def _refund_call(refund: contracts.SweetClubRefundAdd) -> Callable[[SweetClubClient, Document], Awaitable[Outcome]]:
    async def do_refund(client: SweetClubClient, _: Document) -> Outcome:
        payload = refund.payload
        if not payload.get("sale_id") or not payload.get("return_reason_id"):
            return COMMAND_REJECTED, None, "sale_id and return_reason_id are required"
        return _outcome(
            await refund_sale(client, str(payload["sale_id"]), str(payload["return_reason_id"]), payload.get("comment"))
        )

    return do_refund


def _add_call(
    svc: Services, add: contracts.SweetClubSaleAdd
) -> Callable[[SweetClubClient, Document], Awaitable[Outcome]]:
    async def do_add(client: SweetClubClient, command: Document) -> Outcome:
        form = SaleAddForm.model_validate(add.payload)
        noted = cast(dict[str, Any], command.get("write") or {})
        if noted.get("internal_order"):  # an earlier delivery got this far: same key, look up first
            form = form.model_copy(update={"internal_order": str(noted["internal_order"])})

        async def note(key: str, mark: int) -> None:
            await svc.db[COLLECTIONS.connector_commands].update_one(
                {"_id": add.request_id}, {"$set": {"write": {"internal_order": key, "after_sale_id": mark}}}
            )

        mark = noted.get("after_sale_id")
        return _outcome(await create_sale(client, form, mark=int(mark) if mark is not None else None, on_prepared=note))

    return do_add


async def apply_refund(svc: Services, refund: contracts.SweetClubRefundAdd) -> None:
    """A refund SweetClub accepted takes the sale out of the counts at once (status "refunded",
    as a re-sync would store it) and asks analytics to recompute the reports that held it.
    Idempotent: a redelivered command finds the rows already refunded and recomputes again.

    The rows are found by `_id`: a synced sale's id is its source report's id and the platform's
    sale id, so one point lookup per source report of the connection. Matching on
    `extra.external_id` instead scans every sale row of every user (docs/benchmarks.md, "Lookups
    that used to scan a collection"), and an index for it would be paid on every Excel row
    inserted."""
    sale_id = str(refund.payload["sale_id"])
    sources = (
        await svc.db[COLLECTIONS.source_reports]
        .find({"connection_id": refund.connection_id, "kind": "connector"}, projection={"_id": 1})
        .to_list()
    )
    if not sources:
        return
    ids = [row_id(str(source["_id"]), sale_id) for source in sources]
    sales = svc.db[COLLECTIONS.sales]
    rows = await sales.find({"_id": {"$in": ids}}, projection={"report_id": 1, "source_report_id": 1}).to_list()
    if not rows:
        return
    await sales.update_many(
        {"_id": {"$in": [r["_id"] for r in rows]}},
        # A synced sale is a chunk of one (`shared.sale_chunks.single`): the chunk's status and its row's.
        {"$set": {"status": "refunded", "rows.0.status": "refunded", "rows.0.extra.platform_status": "0"}},
    )
    versions = await bump_rows_version(svc.db, [str(row["report_id"]) for row in rows])
    for row in rows:  # a sale is one row per source report that synced it
        await svc.bus.publish(
            contracts.SalesIngested(
                correlation_id=refund.correlation_id,
                report_id=str(row["report_id"]),
                source_report_id=str(row["source_report_id"]),
                rows=1,
                rows_version=versions.get(str(row["report_id"])),
            )
        )
