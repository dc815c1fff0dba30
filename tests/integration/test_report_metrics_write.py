"""AnalyticsRepository.save_figures / save_links against the real database: a computation's figures
land unless one computed from a later rows version has already written its own, whatever the
stored computed_version holds (and whatever the hosts' clocks say: `computed_from` is only shown),
or unless the report's inputs (rates, link costs) changed since they were read."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.repository import AnalyticsRepository
from shared.mongo import COLLECTIONS, Document
from shared.totals import Totals, from_document

STARTED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
TOTALS = Totals(subs=3, revenue={"RUB": Decimal("12.50")}, revenue_rows={"RUB": 1})


async def test_metrics_land_unless_a_later_computation_wrote_first(db: AsyncDatabase[Document]) -> None:
    reports = db[COLLECTIONS.reports]
    await reports.insert_many(
        [
            {"_id": "never", "status": "processing"},  # no computed_version at all
            {"_id": "null", "status": "processing", "computed_version": None},
            # a version before ours, saved by a host whose clock runs an hour ahead of ours
            {"_id": "earlier", "status": "processing", "computed_version": 4, "computed_from": STARTED + HOUR},
            {"_id": "same", "status": "processing", "computed_version": 5},
            # a later version, saved by a host whose clock runs an hour behind
            {"_id": "later", "status": "processing", "computed_version": 6, "computed_from": STARTED - HOUR},
        ]
    )
    repo = AnalyticsRepository(db)

    written = {
        rid: await repo.save_figures(
            rid,
            {"profit": Decimal("12.50"), "subs": 3, "profit_by_currency": {"RUB": Decimal("12.50")}},
            TOTALS,
            computed_version=5,
            computed_from=STARTED,
            inputs_version=0,
            status="success",
        )
        for rid in ("never", "null", "earlier", "same", "later", "missing")
    }

    assert written == {"never": True, "null": True, "earlier": True, "same": True, "later": False, "missing": False}
    stored = {d["_id"]: d async for d in reports.find({})}
    for rid in ("never", "null", "earlier", "same"):
        assert stored[rid]["status"] == "success" and stored[rid]["subs"] == 3
        assert stored[rid]["profit"].to_decimal() == Decimal("12.50")
        assert stored[rid]["profit_by_currency"]["RUB"].to_decimal() == Decimal("12.50")
        assert stored[rid]["computed_from"].replace(tzinfo=UTC) == STARTED
        assert stored[rid]["computed_version"] == 5
        assert stored[rid]["applied_inputs_version"] == 0
        assert from_document(stored[rid]["totals"]) == TOTALS
    assert stored["later"]["status"] == "processing" and "subs" not in stored["later"]
    assert stored["later"]["computed_version"] == 6
    assert "missing" not in stored


async def test_figures_computed_with_old_inputs_are_refused(db: AsyncDatabase[Document]) -> None:
    await db[COLLECTIONS.reports].insert_one({"_id": "r", "status": "success", "inputs_version": 2})
    repo = AnalyticsRepository(db)
    assert (
        await repo.save_figures("r", {"subs": 1}, TOTALS, computed_version=1, computed_from=STARTED, inputs_version=1)
        is False
    )
    assert (
        await repo.save_figures("r", {"subs": 2}, TOTALS, computed_version=1, computed_from=STARTED, inputs_version=2)
        is True
    )
    stored = await db[COLLECTIONS.reports].find_one({"_id": "r"})
    assert stored is not None
    assert (stored["subs"], stored["applied_inputs_version"], stored["status"]) == (2, 2, "success")


async def test_an_older_links_table_never_replaces_a_newer_one(db: AsyncDatabase[Document]) -> None:
    repo = AnalyticsRepository(db)
    entry = {"invite_link": "https://t.me/+a", "subs": 2, "profit": Decimal("1.005")}
    assert await repo.save_links("r", 7, [entry], computed_version=1, computed_from=STARTED, inputs_version=1)
    # newer rows, computed on a host whose clock is an hour behind: still newer
    assert await repo.save_links(
        "r", 7, [{**entry, "subs": 3}], computed_version=2, computed_from=STARTED - HOUR, inputs_version=1
    )
    # older rows (on a clock an hour ahead), or older inputs: refused
    assert not await repo.save_links(
        "r", 7, [{**entry, "subs": 9}], computed_version=1, computed_from=STARTED + HOUR, inputs_version=2
    )
    assert not await repo.save_links(
        "r", 7, [{**entry, "subs": 9}], computed_version=2, computed_from=STARTED, inputs_version=0
    )
    assert await repo.save_links(
        "r", 7, [{**entry, "subs": 4}], computed_version=2, computed_from=STARTED, inputs_version=2
    )
    stored = await db[COLLECTIONS.report_links].find_one({"_id": "r"})
    assert stored is not None
    assert (stored["creator_id"], stored["applied_inputs_version"], stored["links"][0]["subs"]) == (7, 2, 4)
    assert stored["links"][0]["profit"].to_decimal() == Decimal("1.005")
    assert json.loads(stored["links_json"])[0]["subs"] == 4
    answer = await db["report_links_answer"].find_one({"_id": "r"})
    assert answer is not None and answer["computed_version"] == 2 and json.loads(answer["links_json"])[0]["subs"] == 4
