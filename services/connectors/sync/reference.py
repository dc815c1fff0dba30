"""Reference data (SweetClub brands and refund reasons) cached per connection."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import cast

from services.connectors.platforms.base.puller import Puller
from services.connectors.sync.leases import now
from services.connectors.sync.services import Services
from shared.mongo import COLLECTIONS, Document


async def refresh_reference(svc: Services, conn: Document, puller: Puller) -> None:
    """Brands and refund reasons change "extremely rarely" (the SweetClub document): cached per
    connection, refreshed once per `reference_ttl_seconds`."""
    coll = svc.db[COLLECTIONS.reference]
    key = f"{conn['_id']}:{conn['kind']}"
    cached = await coll.find_one({"_id": key}, {"updated_at": 1})
    fresh_after = now() - timedelta(seconds=svc.cfg.reference_ttl_seconds)
    if cached is not None and cast(datetime, cached["updated_at"]) > fresh_after:
        return
    data = await puller.reference()
    if data is not None:
        await coll.replace_one({"_id": key}, {**data, "connection_id": conn["_id"], "updated_at": now()}, upsert=True)
