"""Creating a report from an uploaded workbook: store the file, record the report, hand the
file to ingest by reference, and wait for ingest's verdict so the caller gets its 409 now.

The verdict travels through MongoDB (ingest writes it on the source report; the gateway polls
that one document), so any gateway replica can answer any upload and concurrent uploads never
queue behind one another.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64, ObjectId
from fastapi import Request
from gridfs import AsyncGridFSBucket
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from services.gateway.auth import User
from services.gateway.idempotency import Answer, Claim, IdempotencyKeys
from services.gateway.uploads import StoredUpload, UploadRejected, stream_upload_to_gridfs
from shared import contracts, source_reports
from shared.broker import Bus
from shared.logging import correlation_id
from shared.mongo import COLLECTIONS, Document
from shared.reports import REPORT_PENDING, REPORT_PROCESSING
from shared.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What POST /sales/create answers: a status code and its JSON body."""

    status_code: int
    body: dict[str, Any]


@dataclass(frozen=True)
class NewReport:
    """What the creator says about a new report (its query parameters, already validated)."""

    channel_id: int
    name: str
    budget: Decimal
    currency: str
    exchange_rates: dict[str, Decimal]


# How long one change-stream read waits on the server before the deadline is looked at again.
VERDICT_AWAIT_MS = 250


class Unavailable(Exception):
    """The broker did not take the command: nothing was accepted, the caller may retry."""


async def create_report_from_upload(
    request: Request,
    db: AsyncDatabase[Document],
    bus: Bus,
    settings: Settings,
    user: User,
    new: NewReport,
    idempotency_key: str | None,
) -> Outcome:
    if not idempotency_key:
        return await _create(request, db, bus, settings, user, new, None)
    keys = IdempotencyKeys(
        db, beat_seconds=settings.idempotency_beat_seconds, lease_seconds=settings.idempotency_lease_seconds
    )
    claim = await keys.claim(f"{user.id}:{idempotency_key}")
    if isinstance(claim, Answer):
        return Outcome(claim.status_code, claim.body)
    async with keys.held(claim):
        try:
            outcome = await _resume(db, bus, settings, claim.stranded)
            if outcome is None:
                outcome = await _create(request, db, bus, settings, user, new, (keys, claim))
        except BaseException:
            await keys.release(claim)
            raise
        await keys.answer(claim, Answer(outcome.status_code, outcome.body))
    return outcome


async def _resume(
    db: AsyncDatabase[Document], bus: Bus, settings: Settings, stranded: Document | None
) -> Outcome | None:
    """Goes on with the upload of a request that died holding the key (None: start anew).

    If it got as far as storing its report and noting its `UploadExcel`, that upload is the
    answer: the command is published again (ingest is idempotent per source report, and the first
    one may never have been sent) and its verdict awaited, so the client gets one report, its
    rows once. If not, whatever it had stored (a part of the file, maybe its documents) is
    removed and this request's own body is uploaded instead."""
    if stranded is None:
        return None
    bucket = AsyncGridFSBucket(db, bucket_name=COLLECTIONS.uploads_bucket)
    noted = stranded.get("command")
    if isinstance(noted, dict):
        command = contracts.UploadExcel.model_validate(noted)
        source = await db[COLLECTIONS.source_reports].find_one({"_id": command.source_report_id})
        if source is not None:
            stored = StoredUpload(command.file_id, command.filename, int(source["size"]))
            await _publish(db, bus, bucket, command, stored)
            log.info("upload of a dead request resumed", extra={"report_id": command.report_id})
            return await _await_verdict(db, bucket, settings, command.report_id, command.source_report_id, stored)
    report_id = stranded.get("report_id")
    if isinstance(report_id, str):
        await _forget_partial(db, bucket, report_id)
    return None


async def _create(
    request: Request,
    db: AsyncDatabase[Document],
    bus: Bus,
    settings: Settings,
    user: User,
    new: NewReport,
    claimed: tuple[IdempotencyKeys, Claim] | None,
) -> Outcome:
    channel_id = new.channel_id
    bucket = AsyncGridFSBucket(db, bucket_name=COLLECTIONS.uploads_bucket)
    report_id = uuid.uuid4().hex
    source_report_id = uuid.uuid4().hex
    if claimed is not None:  # a taker of the key, should this request die, knows what to remove
        await claimed[0].note(claimed[1], {"report_id": report_id, "source_report_id": source_report_id})
    try:
        stored = await stream_upload_to_gridfs(
            request,
            db,
            COLLECTIONS.uploads_bucket,
            settings.max_upload_bytes,
            metadata={"creator_id": user.id, "report_id": report_id, "source_report_id": source_report_id},
        )
    except UploadRejected as exc:
        return Outcome(exc.status_code, {"detail": exc.detail})

    now = datetime.now(UTC)
    await db[COLLECTIONS.reports].insert_one(
        {
            "_id": report_id,
            "name": new.name,
            "channel_id": Int64(channel_id),
            "creator_id": user.id,
            "budget": Decimal128(new.budget),
            # SPEC §4.1: the budget's currency and the rates into it; per-link costs come later.
            # Every change of rates or costs bumps inputs_version (services/gateway/inputs.py).
            "currency": new.currency,
            "exchange_rates": {code: Decimal128(rate) for code, rate in new.exchange_rates.items()},
            "link_costs": {},
            "inputs_version": 0,
            "status": REPORT_PENDING,
            "error_message": None,
            "created_at": now,
            "updated_at": now,
        }
    )
    await db[COLLECTIONS.source_reports].insert_one(
        {
            "_id": source_report_id,
            "report_id": report_id,
            "creator_id": user.id,
            "channel_id": Int64(channel_id),
            "kind": "excel",
            "name": stored.filename,
            "file_id": stored.file_id,
            "size": stored.size,
            "status": source_reports.PENDING,
            "verdict": None,
            "rows": None,
            "created_at": now,
        }
    )
    command = contracts.UploadExcel(
        correlation_id=correlation_id.get() or uuid.uuid4().hex,
        report_id=report_id,
        source_report_id=source_report_id,
        file_id=stored.file_id,
        filename=stored.filename,
        creator_id=user.id,
        channel_id=channel_id,
        timezone=settings.timezone,
        currency=new.currency,
    )
    if claimed is not None:  # stored: a taker of the key goes on with this very upload
        await claimed[0].note(claimed[1], {"command": command.model_dump(mode="json")})
    await _publish(db, bus, bucket, command, stored)
    log.info("upload accepted", extra={"report_id": report_id, "bytes": stored.size})
    return await _await_verdict(db, bucket, settings, report_id, source_report_id, stored)


async def _publish(
    db: AsyncDatabase[Document],
    bus: Bus,
    bucket: AsyncGridFSBucket,
    command: contracts.UploadExcel,
    stored: StoredUpload,
) -> None:
    try:
        await bus.publish(command)
    except Exception as exc:
        log.error("upload command not accepted by the broker: %r", exc)
        await _forget(db, bucket, command.report_id, stored)
        raise Unavailable("the message broker is unavailable; nothing was stored, please retry") from exc


async def _await_verdict(
    db: AsyncDatabase[Document],
    bucket: AsyncGridFSBucket,
    settings: Settings,
    report_id: str,
    source_report_id: str,
    stored: StoredUpload,
) -> Outcome:
    deadline = time.monotonic() + settings.validation_wait_seconds
    verdict = await _watch_for_verdict(db, source_report_id, deadline)
    if verdict is None:
        verdict = await _poll_for_verdict(db, source_report_id, deadline)
    if verdict is None:
        # Still being read: answer now; the report's status tells the rest.
        return Outcome(200, {"report_id": report_id, "status": REPORT_PENDING})
    if verdict["ok"]:
        report = await db[COLLECTIONS.reports].find_one({"_id": report_id}, projection={"status": 1})
        return Outcome(200, {"report_id": report_id, "status": (report or {}).get("status", REPORT_PROCESSING)})
    # A rejected file leaves nothing behind.
    await _forget(db, bucket, report_id, stored)
    if verdict.get("kind") == "unsupported_format":
        return Outcome(415, {"detail": verdict.get("detail") or "the file is not a spreadsheet"})
    return Outcome(409, {"detail": verdict["detail"], "errors": verdict.get("errors", [])})


async def _read_verdict(db: AsyncDatabase[Document], source_report_id: str) -> dict[str, Any] | None:
    source = await db[COLLECTIONS.source_reports].find_one({"_id": source_report_id}, projection={"verdict": 1})
    verdict: dict[str, Any] | None = source.get("verdict") if source else None
    return verdict


async def _watch_for_verdict(
    db: AsyncDatabase[Document], source_report_id: str, deadline: float
) -> dict[str, Any] | None:
    """The verdict as soon as ingest writes it: a change stream on the one source report wakes us
    the moment its document changes (a poll noticed it up to 250 ms late, and a small file's whole
    parse takes about that). The read right after the stream opens catches a verdict written
    before. None when the deadline passes or the stream cannot be used (no replica set, an outage):
    the caller then polls for whatever time is left."""
    try:
        async with await db[COLLECTIONS.source_reports].watch(
            [{"$match": {"documentKey._id": source_report_id}}], max_await_time_ms=VERDICT_AWAIT_MS
        ) as stream:
            while True:
                verdict = await _read_verdict(db, source_report_id)
                if verdict is not None:
                    return verdict
                while await stream.try_next() is None:
                    if time.monotonic() >= deadline:
                        return None
    except PyMongoError as exc:
        log.warning("verdict change stream unavailable, polling: %r", exc)
        return None


async def _poll_for_verdict(
    db: AsyncDatabase[Document], source_report_id: str, deadline: float
) -> dict[str, Any] | None:
    delay = 0.02
    while time.monotonic() < deadline:
        try:
            verdict = await _read_verdict(db, source_report_id)
        except PyMongoError as exc:
            # The upload is accepted (the command is durable): a database outage while we wait
            # must not turn it into an error the caller would retry as a second report.
            log.warning("database unavailable while awaiting the verdict: %r", exc)
            await asyncio.sleep(0.5)
            continue
        if verdict is not None:
            return verdict
        await asyncio.sleep(delay)
        delay = min(delay * 1.5, 0.25)
    return None


async def _forget_partial(db: AsyncDatabase[Document], bucket: AsyncGridFSBucket, report_id: str) -> None:
    """What a request that died before publishing its upload had stored: its file (found by the
    report named in its GridFS metadata) and the report's documents. The chunks of a file it was
    still receiving have no files document yet and stay (they are never read)."""
    files = await db[f"{COLLECTIONS.uploads_bucket}.files"].distinct("_id", {"metadata.report_id": report_id})
    for file_id in files:
        await _forget(db, bucket, report_id, StoredUpload(str(file_id), "", 0))
    if not files:
        await _forget(db, bucket, report_id, None)


async def _forget(
    db: AsyncDatabase[Document], bucket: AsyncGridFSBucket, report_id: str, stored: StoredUpload | None
) -> None:
    sources = await db[COLLECTIONS.source_reports].distinct("_id", {"report_id": report_id})
    await db[COLLECTIONS.sales].delete_many({"source_report_id": {"$in": sources}})
    await db[COLLECTIONS.source_reports].delete_many({"report_id": report_id})
    await db[COLLECTIONS.reports].delete_one({"_id": report_id})
    if stored is None:
        return
    try:
        await bucket.delete(ObjectId(stored.file_id))
    except Exception:  # already gone is fine
        log.debug("upload %s already deleted", stored.file_id)
