"""The gateway load scenario in which no two requests in flight are identical (issue 19).

Each of N clients is its own user with its own token and its own reports (several each, of
realistic sizes), and walks its own reports: full report reads, and sales-listing pages with
varying statuses, offsets, filters (product, premium, period) and orders. Since every request
carries its client's token and a client has one request in flight at a time, no two requests in
flight can be identical, so coalescing cannot carry the figure.

Seeding: one campaign goes through the real pipeline (bench.gateway_load.seeded_stack), and its
stored report and source documents are the templates cloned for every user's reports; the rows
are generated in the stored sale-row shape (shared/sale_rows.py) and packed into chunks exactly as
ingest packs them (shared.sale_chunks.ChunkPacker), with the listing documents ingest writes
beside them (shared.sale_listing.ListingCollector).
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import bson
from bson import Decimal128, Int64
from bson.raw_bson import RawBSONDocument
from pymongo.asynchronous.database import AsyncDatabase

from bench.loadgen import encode_request
from services.gateway.auth import create_user_token
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import ChunkPacker
from shared.sale_listing import ListingCollector

CHANNEL = -1001234567890
# Rows per report, cycled over each client's reports: a seller's uploads run from a few hundred
# rows to several thousand (bench.parse's small file is 10 000).
REPORT_SIZES = (400, 1_500, 4_000)
PRODUCTS = ("Course A", "Course B", "Mentoring", "Workbook")
T0 = datetime(2026, 9, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ClientReports:
    token: str
    user_id: int
    reports: list[tuple[str, str, int]]  # (report id, source report id, rows)


def sale_rows(report_id: str, source_id: str, user_id: int, n: int, seed: int) -> list[Document]:
    """`n` stored sale rows of one Excel source, in row order (the shape of shared/sale_rows.py)."""
    rnd = random.Random(seed)
    rows: list[Document] = []
    for i in range(n):
        status = rnd.choice(("sale", "lead", "funnel", None, None))
        sub = T0 + timedelta(minutes=rnd.randrange(60 * 24 * 60))
        action = sub + timedelta(hours=rnd.randrange(1, 240)) if status else None
        rows.append({
            "_id": f"{source_id}:{i + 2}", "report_id": report_id, "source_report_id": source_id,
            "channel_id": Int64(CHANNEL), "creator_id": user_id, "source": "excel", "row": i + 2,
            "user_id": Int64(5_000_000 + rnd.randrange(n)), "customer_key": None,
            "name": f"Buyer {i}", "product": rnd.choice(PRODUCTS) if status else None,
            "username": f"user{i}" if rnd.random() < 0.6 else None, "photo_url": None,
            "phone_number": "+79990000000" if rnd.random() < 0.2 else None,
            "invite_link": f"https://t.me/+link{rnd.randrange(8)}" if rnd.random() < 0.8 else None,
            "is_premium": rnd.random() < 0.3, "birthdate": None, "status": status,
            "purchase_amount": Decimal128(Decimal(rnd.randrange(1_000, 900_000)) / 100) if status == "sale" else None,
            "currency": "RUB", "sub_date": sub,
            "unsub_date": sub + timedelta(days=rnd.randrange(1, 60)) if rnd.random() < 0.25 else None,
            "action_date": action,
            "action_period_ms": Int64(int((action - sub).total_seconds() * 1000)) if action else None,
            "extra": None,
        })  # fmt: skip
    return rows


async def seed_clients(
    db: AsyncDatabase[Document], template_report_id: str, clients: int, per_client: int
) -> list[ClientReports]:
    """`clients` users, each with a token and `per_client` reports cloned from the template."""
    template = await db[COLLECTIONS.reports].find_one({"_id": template_report_id})
    template_source = await db[COLLECTIONS.source_reports].find_one({"report_id": template_report_id})
    assert template is not None
    assert template_source is not None
    out: list[ClientReports] = []
    for c in range(clients):
        user, token = await create_user_token(db, f"walker{c}")
        owned: list[tuple[str, str, int]] = []
        for k in range(per_client):
            n = REPORT_SIZES[(c + k) % len(REPORT_SIZES)]
            report_id, source_id = uuid.uuid4().hex, uuid.uuid4().hex
            await db[COLLECTIONS.reports].insert_one(
                {**template, "_id": report_id, "creator_id": user.id, "name": f"campaign {c}.{k}"}
            )
            await db[COLLECTIONS.source_reports].insert_one(
                {**template_source, "_id": source_id, "report_id": report_id, "creator_id": user.id,
                 "rows": n, "name": f"export-{c}-{k}.xlsx"}
            )  # fmt: skip
            packer = ChunkPacker()
            chunks = packer.add(sale_rows(report_id, source_id, user.id, n, seed=c * 100 + k))
            chunks.extend(packer.flush())
            # And the listing documents ingest writes beside them (shared.sale_listing).
            listings = ListingCollector()
            for chunk in chunks:
                listings.add(bson.encode(chunk), chunk["status"], len(chunk["rows"]))
            stored = [RawBSONDocument(listing) for listing in listings.documents()]
            await db[COLLECTIONS.sales].insert_many([*chunks, *stored], ordered=False)
            owned.append((report_id, source_id, n))
        out.append(ClientReports(token, user.id, owned))
    return out


Request = tuple[str, str, dict[str, Any] | None]  # method, path with query, JSON body


def walk(client: ClientReports, seed: int, length: int = 64) -> list[Request]:
    """One client's cycle of requests: a third full report reads, a third default listing pages
    (row order, any status, varying offsets), a third pages filtered or ordered otherwise, in an
    order of its own."""
    rnd = random.Random(seed)
    # A third of each kind per cycle, in this client's own order. With one order for all (i % 3)
    # every client took the same kind at the same step, and the open loop, which hands arrivals to
    # the clients in turn, then served ≈ 50 arrivals of one kind, then ≈ 50 of the next: bursts of
    # the costliest kind that no set of independent users makes, which set the p99.
    kinds = [i % 3 for i in range(length)]
    rnd.shuffle(kinds)
    out: list[Request] = []
    for kind in kinds:
        report_id, source_id, rows = rnd.choice(client.reports)
        if kind == 0:
            out.append(("POST", "/sales/analytic/report", {"report_id": report_id}))
            continue
        params: dict[str, Any] = {"status": rnd.choice(("sale", "lead", "funnel"))}
        params["limit"] = rnd.choice((10, 20, 50))
        params["offset"] = rnd.randrange(0, max(1, rows // 5), 10)
        if kind == 2:
            choice = rnd.randrange(4)
            if choice == 0:
                params["product"] = rnd.choice(PRODUCTS)
            elif choice == 1:
                start = T0 + timedelta(days=rnd.randrange(50))
                params["start_date"] = start.isoformat().replace("+00:00", "Z")
                params["end_date"] = (start + timedelta(days=7)).isoformat().replace("+00:00", "Z")
            elif choice == 2:
                params["order_by"] = rnd.choice(("purchase_amount", "sub_date", "user_id"))
                params["order_dir"] = rnd.choice(("asc", "desc"))
            else:
                params["is_premium"] = rnd.choice(("true", "false"))
            params["offset"] = rnd.randrange(0, 60, 10)
        out.append(("GET", f"/sales/analytic/{CHANNEL}/{source_id}/sales?{urlencode(params)}", None))
    return out


def encoded(base: str, client: ClientReports, requests: list[Request]) -> list[bytes]:
    headers = {"Authorization": f"Bearer {client.token}"}
    return [encode_request(method, base + target, headers, body) for method, target, body in requests]
