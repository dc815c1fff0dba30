"""AnalyticsRepository.save_metrics against the real database: a computation's metrics land unless
one that started later has already written its own, whatever the stored computed_from holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.repository import AnalyticsRepository
from shared.mongo import COLLECTIONS, Document

STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def test_metrics_land_unless_a_later_computation_wrote_first(db: AsyncDatabase[Document]) -> None:
    reports = db[COLLECTIONS.reports]
    await reports.insert_many(
        [
            {"_id": "never", "status": "processing"},  # no computed_from at all
            {"_id": "null", "status": "processing", "computed_from": None},
            {"_id": "earlier", "status": "processing", "computed_from": STARTED - timedelta(seconds=1)},
            {"_id": "same", "status": "processing", "computed_from": STARTED},
            {"_id": "later", "status": "processing", "computed_from": STARTED + timedelta(seconds=1)},
        ]
    )
    repo = AnalyticsRepository(db)

    written = {
        rid: await repo.save_metrics(rid, {"profit": Decimal("12.50"), "subs": 3}, "success", STARTED)
        for rid in ("never", "null", "earlier", "same", "later", "missing")
    }

    assert written == {"never": True, "null": True, "earlier": True, "same": True, "later": False, "missing": False}
    stored = {d["_id"]: d async for d in reports.find({})}
    for rid in ("never", "null", "earlier", "same"):
        assert stored[rid]["status"] == "success" and stored[rid]["subs"] == 3
        assert stored[rid]["profit"].to_decimal() == Decimal("12.50")
        assert stored[rid]["computed_from"].replace(tzinfo=UTC) == STARTED
    assert stored["later"]["status"] == "processing" and "subs" not in stored["later"]
    assert "missing" not in stored
