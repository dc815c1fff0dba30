"""Synced rows in MongoDB: written only when their listing fields changed, marked for enrichment,
enriched in place; and the quarantine of items that could not be read.

Each synced sale is a chunk of one (`shared.sale_chunks.single`) keyed by source report and
external id. The chunk also carries `listing_hash` (what the listing said, hashed) and, until a
detail call has enriched it, `enrich_pending: true`. A re-read listing item whose hash is the
stored one is not written at all, and keeps its enrichment; one whose hash changed is replaced and
marked pending again. Enrichment is written guarded by the hash it was asked for, so a detail
read before a newer listing change never overwrites it. The marker is persisted with the row, so
a process killed mid-enrichment resumes with exactly the rows still pending: no duplicate call
result, no gap.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64
from pymongo import ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError

from services.connectors.platforms.base.puller import Enrichment, Quarantined
from services.connectors.platforms.base.rows import Row
from services.connectors.sync.leases import now
from services.connectors.telemetry import CONNECTOR_QUARANTINED
from shared.mongo import COLLECTIONS, DUPLICATE_KEY, Document
from shared.sale_chunks import single


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal128):
        value = value.to_decimal()
    if isinstance(value, Decimal):  # 99, "99" and 99.0 are one amount
        return format(value.normalize(), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Int64):
        return int(value)
    return str(value)


def listing_hash(row: Row) -> str:
    """The listing's view of a sale, hashed: a change of amount, status, date, currency... (any
    listing field) changes it."""
    return hashlib.sha1(json.dumps(row, sort_keys=True, default=_plain).encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Pending:
    row_id: str
    external_id: str
    listing_hash: str


class RowsStore:
    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.sales = db[COLLECTIONS.sales]
        self.quarantine_coll = db[COLLECTIONS.quarantine]

    async def store_listing(self, rows: list[Row], *, enrich: bool) -> int:
        """Writes the rows that are new or whose listing fields changed; returns how many.

        New rows go in one unordered `insert_many`: SecantusDB pays for an upsert per document
        (it looks the `_id` up, then writes), an insert only writes — a first sync is almost all
        new rows. Only rows stored before with another hash are replaced."""
        latest = {str(r["_id"]): r for r in rows}  # a sale listed twice on a page: its last state
        if not latest:
            return 0
        hashes = {row_id: listing_hash(row) for row_id, row in latest.items()}
        stored = await self.sales.find({"_id": {"$in": list(latest)}}, {"listing_hash": 1}).to_list()
        known = {str(d["_id"]): d.get("listing_hash") for d in stored}
        new: list[Document] = []
        changed: list[Document] = []
        for row_id, row in latest.items():
            if known.get(row_id) == hashes[row_id]:
                continue
            doc = single(row)
            doc["listing_hash"] = hashes[row_id]
            if enrich:
                doc["enrich_pending"] = True
            (changed if row_id in known else new).append(doc)
        replaced = changed + await self._insert_new(new)
        if replaced:
            replaces = [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in replaced]
            await self.sales.bulk_write(replaces, ordered=False)
        return len(new) + len(changed)

    async def _insert_new(self, docs: list[Document]) -> list[Document]:
        """Inserts rows not stored at our read; returns those stored meanwhile by someone else (a
        replica whose lease ran out), to be replaced with this listing's state."""
        if not docs:
            return []
        try:
            await self.sales.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            return [docs[int(e["index"])] for e in errors]
        return []

    async def pending(self, source_report_id: str) -> list[Pending]:
        """The rows of a source still waiting for their detail call (one read, by the sales index's
        `source_report_id` prefix)."""
        docs = await self.sales.find(
            {"source_report_id": source_report_id, "enrich_pending": True}, {"listing_hash": 1}
        ).to_list()
        prefix = f"{source_report_id}:"
        return [
            Pending(str(d["_id"]), str(d["_id"]).removeprefix(prefix), str(d.get("listing_hash") or "")) for d in docs
        ]

    async def apply_enrichment(self, done: Iterable[tuple[Pending, Enrichment]]) -> int:
        ops = []
        for pending, result in done:
            fields = {f"rows.0.{path}": value for path, value in result.fields.items()}
            if result.quarantined is not None:
                fields["rows.0.extra.detail_error"] = result.quarantined.reason
            ops.append(
                UpdateOne(
                    {"_id": pending.row_id, "listing_hash": pending.listing_hash},
                    {"$set": {**fields, "enriched_at": now()}, "$unset": {"enrich_pending": ""}},
                )
            )
        if ops:
            await self.sales.bulk_write(ops, ordered=False)
        return len(ops)

    async def quarantine(
        self, api: str, source_report_id: str, connection_id: str, items: Iterable[Quarantined]
    ) -> int:
        """Keeps each unreadable item with its raw payload (as JSON text: a payload's keys need not
        be valid MongoDB field names) and the reason; one document per item and stage."""
        ops = []
        for item in items:
            raw = json.dumps(item.raw, ensure_ascii=False, default=str)[:100_000]
            key = item.external_id or hashlib.sha1(raw.encode(), usedforsecurity=False).hexdigest()[:16]
            CONNECTOR_QUARANTINED.labels(api=api, stage=item.stage).inc()
            ops.append(
                UpdateOne(
                    {"_id": f"{source_report_id}:{item.stage}:{key}"},
                    {
                        "$set": {
                            "source_report_id": source_report_id,
                            "connection_id": connection_id,
                            "api": api,
                            "stage": item.stage,
                            "external_id": item.external_id,
                            "reason": item.reason,
                            "raw": raw,
                            "seen_at": now(),
                        },
                        "$setOnInsert": {"first_seen_at": now()},
                    },
                    upsert=True,
                )
            )
        if ops:
            await self.quarantine_coll.bulk_write(ops, ordered=False)
        return len(ops)
