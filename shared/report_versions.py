"""A report's rows version: a counter on the report document that every writer of the report's
rows increments after writing them and before announcing them (`SalesIngested.rows_version`).

It replaces wall-clock times for "has this recompute seen that event's rows?". Analytics
increments the counter too, before it reads the rows, and saves its figures with the value it got
(`computed_version`): a recompute that got version V has seen every write whose increment
returned less (each such write finished before its increment, and that increment came before
analytics' own). Clocks of different hosts never take part: the counter lives in one document
and one atomic `$inc` orders every writer and every recompute, whatever machine each runs on.
Because each recompute has a version of its own, a save never meets another of the same version
computed from other rows: the later reader always wins.

A write that is not (yet) followed by an increment may be seen by a recompute too; it is then
merely counted again by the recompute its own increment triggers (whose version is higher). An increment retried by the
driver after a lost reply may count twice: the version only has to grow, not to count writes.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import COLLECTIONS, Document

ROWS_VERSION_FIELD = "rows_version"


async def bump_rows_version(db: AsyncDatabase[Document], report_ids: Iterable[str]) -> dict[str, int]:
    """Increments each report's rows version and returns the new values by report id. A report
    that no longer exists is left out (nothing will recompute it)."""
    versions: dict[str, int] = {}
    reports = db[COLLECTIONS.reports]
    for report_id in dict.fromkeys(report_ids):  # each report once, in the caller's order
        # One document per report, so one $inc each: an update_many could not return the values.
        after = await reports.find_one_and_update(
            {"_id": report_id},
            {"$inc": {ROWS_VERSION_FIELD: 1}},
            projection={ROWS_VERSION_FIELD: 1},
            return_document=ReturnDocument.AFTER,
        )
        if after is not None:
            versions[report_id] = int(after[ROWS_VERSION_FIELD])
    return versions


async def bump_report_rows(db: AsyncDatabase[Document], report_id: str) -> int | None:
    """`bump_rows_version` of one report: its new version, or None if it no longer exists."""
    return (await bump_rows_version(db, [report_id])).get(report_id)
