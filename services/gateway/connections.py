"""The database work of the connections API (routes/connections.py): connections, their
connector source reports and the live commands the connectors service answers.

Every read is scoped to the caller (creator_id): someone else's connection, source report or
command is indistinguishable from a missing one (None here, 404 for the route). Credentials are
sealed (shared.credentials) before they are stored and never come back out of this module.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from bson import Int64
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User
from services.gateway.schemas import (
    AttachIn,
    CommandOut,
    ConnectionIn,
    ConnectionOut,
    ConnectionPatch,
    SourceReportOut,
)
from shared.connector_commands import COMMAND_QUEUED, FINAL_COMMAND_STATES
from shared.credentials import CredentialsBox, Kind, missing_credentials
from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings
from shared.source_reports import PENDING, SYNC_IDLE

# How often a waiting route looks at its command again.
COMMAND_POLL_SECONDS = 0.1


class IncompleteCredentials(ValueError):
    """New credentials that lack a field the connection's platform needs."""


class ReportNotFound(LookupError):
    """The report to attach a connection to is missing or the caller's own is not it."""


class OtherChannel(ValueError):
    """The connection and the report belong to different channels."""


def connection_view(doc: Document) -> ConnectionOut:
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


def source_view(doc: Document) -> SourceReportOut:
    return SourceReportOut(
        id=str(doc["_id"]),
        report_id=str(doc["report_id"]),
        kind=str(doc["kind"]),
        connection_id=str(doc["connection_id"]),
        period_start=cast(datetime, doc["period_start"]),
        period_end=cast(datetime, doc["period_end"]),
        status=cast(Any, doc["status"]),
        progress=cast(dict[str, Any], doc.get("progress") or {}),
        error_message=cast(str | None, doc.get("error_message")),
        creator_id=int(cast(int, doc["creator_id"])),
        channel_id=int(cast(int, doc["channel_id"])),
        created_at=cast(datetime, doc["created_at"]),
    )


def command_view(doc: Document) -> CommandOut:
    return CommandOut(
        request_id=str(doc["_id"]),
        kind=str(doc["kind"]),
        state=cast(Any, doc["state"]),
        result=cast(dict[str, Any] | None, doc.get("result")),
        error=cast(str | None, doc.get("error")),
    )


# --------------------------------------------------------------------------- connections


async def create_connection(
    db: AsyncDatabase[Document], user: User, settings: Settings, body: ConnectionIn
) -> Document:
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
    return doc


async def list_connections(db: AsyncDatabase[Document], user: User, channel_id: int | None) -> list[Document]:
    where: dict[str, Any] = {"creator_id": user.id}
    if channel_id is not None:
        where["channel_id"] = Int64(channel_id)
    return await db[COLLECTIONS.connections].find(where, {"credentials": 0}).sort("created_at", -1).to_list(1000)


async def own_connection(
    db: AsyncDatabase[Document], user: User, connection_id: str, kind: Kind | None = None
) -> Document | None:
    """The caller's connection (of that platform, when `kind` is given), or None."""
    doc = await db[COLLECTIONS.connections].find_one({"_id": connection_id, "creator_id": user.id})
    if doc is None or (kind is not None and doc.get("kind") != kind):
        return None
    return doc


async def update_connection(
    db: AsyncDatabase[Document], user: User, settings: Settings, doc: Document, body: ConnectionPatch
) -> Document:
    """`doc` with the patch applied and saved; new credentials must be complete (else
    IncompleteCredentials, nothing saved)."""
    changes: dict[str, Any] = body.model_dump(exclude_unset=True, exclude={"credentials"})
    if body.credentials is not None:
        kind = cast(Kind, doc["kind"])
        if missing := missing_credentials(kind, body.credentials):
            raise IncompleteCredentials(f"credentials for {kind} need {', '.join(missing)}")
        changes["credentials"] = CredentialsBox(settings).seal(body.credentials)
    if "poll_interval_seconds" in changes:
        changes["next_poll_at"] = datetime.now(UTC) if changes["poll_interval_seconds"] else None
    if changes:
        await db[COLLECTIONS.connections].update_one({"_id": doc["_id"], "creator_id": user.id}, {"$set": changes})
        doc.update(changes)
    return doc


async def delete_connection(db: AsyncDatabase[Document], user: User, connection_id: str) -> bool:
    """True when the caller's connection was there and is gone."""
    result = await db[COLLECTIONS.connections].delete_one({"_id": connection_id, "creator_id": user.id})
    return bool(result.deleted_count)


# --------------------------------------------------------------------------- commands


async def new_command(db: AsyncDatabase[Document], user: User, kind: str, connection_id: str) -> str:
    """A queued command document; its request id goes into the message to the connectors."""
    request_id = uuid.uuid4().hex
    await db[COLLECTIONS.connector_commands].insert_one(
        {
            "_id": request_id,
            "kind": kind,
            "connection_id": connection_id,
            "creator_id": user.id,
            "state": COMMAND_QUEUED,
            "created_at": datetime.now(UTC),
        }
    )
    return request_id


async def forget_command(db: AsyncDatabase[Document], request_id: str) -> None:
    """A command whose message the broker did not take: nobody will answer it."""
    await db[COLLECTIONS.connector_commands].delete_one({"_id": request_id})


async def await_command(db: AsyncDatabase[Document], request_id: str, wait: float) -> Document:
    """The command once it has its answer, or as it stands after `wait` seconds."""
    deadline = time.monotonic() + wait
    while True:
        doc = await db[COLLECTIONS.connector_commands].find_one({"_id": request_id})
        assert doc is not None
        if doc["state"] in FINAL_COMMAND_STATES or time.monotonic() >= deadline:
            return doc
        await asyncio.sleep(COMMAND_POLL_SECONDS)


async def find_command(db: AsyncDatabase[Document], user: User, connection_id: str, request_id: str) -> Document | None:
    return await db[COLLECTIONS.connector_commands].find_one(
        {"_id": request_id, "connection_id": connection_id, "creator_id": user.id}
    )


# --------------------------------------------------------------------------- source reports


async def attach_source(db: AsyncDatabase[Document], user: User, conn: Document, body: AttachIn) -> Document:
    """A new connector source report of the caller's report (ReportNotFound, OtherChannel)."""
    report = await db[COLLECTIONS.reports].find_one({"_id": body.report_id, "creator_id": user.id})
    if report is None:
        raise ReportNotFound(body.report_id)
    if int(cast(int, report["channel_id"])) != int(cast(int, conn["channel_id"])):
        raise OtherChannel("the connection belongs to another channel than the report")
    doc: Document = {
        "_id": uuid.uuid4().hex,
        "report_id": body.report_id,
        "kind": "connector",
        "connection_id": conn["_id"],
        "source": conn["kind"],
        "period_start": datetime.combine(body.period_start, datetime.min.time(), UTC),
        "period_end": datetime.combine(body.period_end, datetime.min.time(), UTC),
        "status": PENDING,
        "progress": {"state": SYNC_IDLE, "pages": 0, "sales": 0},
        "error_message": None,
        "creator_id": user.id,
        "channel_id": Int64(int(cast(int, conn["channel_id"]))),
        "created_at": datetime.now(UTC),
        "sync_requested": False,
    }
    await db[COLLECTIONS.source_reports].insert_one(doc)
    return doc


def _connector_sources(user: User, connection_id: str) -> dict[str, Any]:
    return {"connection_id": connection_id, "creator_id": user.id, "kind": "connector"}


async def list_sources(db: AsyncDatabase[Document], user: User, connection_id: str) -> list[Document]:
    cursor = db[COLLECTIONS.source_reports].find(_connector_sources(user, connection_id)).sort("created_at", -1)
    return await cursor.to_list(1000)


async def find_source(
    db: AsyncDatabase[Document], user: User, connection_id: str, source_report_id: str
) -> Document | None:
    return await db[COLLECTIONS.source_reports].find_one(
        {"_id": source_report_id, "connection_id": connection_id, "creator_id": user.id}
    )


async def sources_to_sync(
    db: AsyncDatabase[Document], user: User, connection_id: str, source_report_id: str | None
) -> list[str]:
    """The ids of the connection's source reports a sync covers: the one named, or all."""
    where = _connector_sources(user, connection_id)
    if source_report_id is not None:
        where["_id"] = source_report_id
    return [str(d["_id"]) for d in await db[COLLECTIONS.source_reports].find(where, {"_id": 1}).to_list(1000)]
