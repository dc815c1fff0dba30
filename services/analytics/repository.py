"""MongoDB adapter of analytics: one aggregation pass over a report's rows, and the report write."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from bson import Binary, Decimal128
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from shared.currency import DEFAULT_CURRENCY
from shared.gc_pause import paused_gc
from shared.links_answer import LINKS_ANSWER_COLLECTION, LINKS_JSON_FIELD, answer_document, encode_links
from shared.mongo import COLLECTIONS, Document
from shared.report_versions import bump_report_rows
from shared.sale_chunks import rows_pipeline
from shared.sale_rows import ACTION_STATUSES, MS_PER_DAY
from shared.source_reports import FAILED, FINAL_SOURCE_STATES, INGESTED, PENDING, PROCESSING
from shared.totals import (
    ORDER_STRIDE,
    RETENTION_DAYS,
    REVENUE_STATUSES,
    LinkTotals,
    Totals,
    TotalsFold,
    from_document,
    is_current_document,
    link_sort_key,
    to_document,
)


def _utc(value: Any) -> datetime:
    if not isinstance(value, datetime):
        return datetime.min.replace(tzinfo=UTC)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _flag(condition: Any) -> dict[str, Any]:
    return {"$cond": [condition, 1, 0]}


def folded_at_ingest(source: Document) -> Totals | None:
    """An Excel file's totals, folded by ingest as it stored the rows. Its rows never change once
    ingested, so for a report made of that one file they are the report's totals (distinct users
    of several sources cannot be added up, so any other report is scanned). Totals an older
    release stored (without currencies or links) are not used."""
    if (
        source.get("kind", "excel") == "excel"
        and source.get("status") == INGESTED
        and is_current_document(source.get("totals"))
    ):
        return from_document(source["totals"])
    return None


UNJUDGED: Final = (PENDING, PROCESSING)


def chunks_of(source_ids: list[str]) -> dict[str, Any]:
    """The filter for a report's chunks of rows: through its sources, which the sales index leads with."""
    return {"source_report_id": {"$in": source_ids}}


def excel_as_of(sources: list[Document]) -> tuple[bool, datetime | None]:
    """The report's `as_of` from what ingest folded per Excel file (its rows never change once
    ingested; files that failed stored none): (True, as_of), or (False, None) when a file's
    totals are missing (still being stored, or an older release) and the rows must tell."""
    latest: datetime | None = None
    for source in sources:
        if source.get("kind", "excel") != "excel" or source.get("status") == FAILED:
            continue
        stored = source.get("totals")
        if source.get("status") != INGESTED or stored is None or not is_current_document(stored):
            return False, None
        moment = from_document(stored).as_of
        if moment is not None and (latest is None or moment > latest):
            latest = moment
    return True, latest


UNKNOWN: Any = object()  # `as_of` not known before the pass: the pipeline finds it itself


def totals_pipeline(
    source_ids: list[str], report_currency: str = DEFAULT_CURRENCY, as_of: Any = UNKNOWN
) -> list[dict[str, Any]]:
    """The database's version of `TotalsFold` (identical results, tested), in one pass over the
    rows. `source_ids` are in creation order (the file order of first-touch ties).

    Rows are grouped by (user key, currency), then by user key and attribution, then by user key
    and link (an Excel user's rows go to the link of its first touch, which is only known once
    all of its rows are grouped), then by user key; the report's `as_of` reaches every user
    through a window over those user documents; the last group yields one document per (link,
    currency) — never a list of users or rows — which `aggregated_totals` adds up. When the
    caller knows `as_of` (from the files' stored totals, `excel_as_of`), it is a constant instead
    of the window, which SecantusDB evaluates in time quadratic in the users."""
    as_of_stage: dict[str, Any] = (
        {"$setWindowFields": {"output": {"as_of": {"$max": "$d", "window": {"documents": ["unbounded", "unbounded"]}}}}}
        if as_of is UNKNOWN
        else {"$set": {"as_of": {"$literal": as_of}}}
    )
    key = {"$ifNull": ["$user_id", "$customer_key"]}
    is_excel = {"$eq": ["$source", "excel"]}
    excel_user = {"$and": [is_excel, {"$ne": [key, None]}]}
    is_revenue = {
        "$and": [{"$in": ["$status", list(REVENUE_STATUSES)]}, {"$ne": [{"$ifNull": ["$purchase_amount", None]}, None]}]
    }
    has_username = {"$gt": [{"$strLenCP": {"$ifNull": ["$username", ""]}}, 0]}
    order = {
        "$add": [
            {"$multiply": [{"$indexOfArray": [source_ids, "$source_report_id"]}, ORDER_STRIDE]},
            {"$ifNull": ["$row", 0]},
        ]
    }
    row: dict[str, Any] = {
        "k": key,
        "xu": excel_user,
        "lo": {"$cond": [excel_user, None, {"$ifNull": ["$invite_link", None]}]},
        "c": {"$ifNull": ["$currency", report_currency]},
        "amt": {"$cond": [is_revenue, "$purchase_amount", None]},
        "amt_n": _flag(is_revenue),
        # Fields compare in this order: sub_date, then file order (unique per row).
        "ft": {
            "$cond": [
                excel_user,
                {
                    "s": "$sub_date",
                    "o": order,
                    "u": {"$ifNull": ["$unsub_date", None]},
                    "l": {"$ifNull": ["$invite_link", None]},
                },
                None,
            ]
        },
        "d": {"$cond": [is_excel, {"$max": ["$sub_date", "$unsub_date", "$action_date"]}, None]},
        "prem": _flag({"$and": [excel_user, {"$eq": ["$is_premium", True]}]}),
        "named": _flag({"$and": [excel_user, has_username]}),
    }
    for status in ACTION_STATUSES:
        is_status = {"$eq": ["$status", status]}
        has_period = {"$and": [is_status, {"$ne": [{"$ifNull": ["$action_period_ms", None]}, None]}]}
        row[f"n_{status}"] = _flag(is_status)
        row[f"ps_{status}"] = {"$cond": [has_period, "$action_period_ms", 0]}
        row[f"pn_{status}"] = _flag(has_period)
    counted = [f"{p}_{s}" for s in ACTION_STATUSES for p in ("n", "ps", "pn")]
    sums = {name: {"$sum": f"${name}"} for name in counted}
    kept_per_key = {
        "ft": {"$min": "$ft"},
        "d": {"$max": "$d"},
        "prem": {"$max": "$prem"},
        "named": {"$max": "$named"},
    }
    by_currency = {
        "_id": {"k": "$k", "xu": "$xu", "lo": "$lo", "c": "$c"},
        **sums,
        **kept_per_key,
        "rev": {"$sum": "$amt"},
        "rev_n": {"$sum": "$amt_n"},
    }
    by_attribution = {
        "_id": {"k": "$_id.k", "xu": "$_id.xu", "lo": "$_id.lo"},
        **sums,
        **kept_per_key,
        "revs": {"$push": {"c": "$_id.c", "rev": "$rev", "n": "$rev_n"}},
    }
    link_of = {"$cond": ["$_id.xu", "$ft.l", "$_id.lo"]}
    by_link = {
        "_id": {"k": "$_id.k", "l": link_of},
        **sums,
        **kept_per_key,
        "xu": {"$max": _flag("$_id.xu")},
        "revs": {"$push": {"$filter": {"input": "$revs", "cond": {"$gt": ["$$this.n", 0]}}}},
    }
    part = {name: f"${name}" for name in counted} | {
        "l": "$_id.l",
        "xu": "$xu",
        "ft": "$ft",
        "buyer": _flag({"$and": [{"$ne": ["$_id.k", None]}, {"$gt": ["$n_sale", 0]}]}),
        "revs": {"$reduce": {"input": "$revs", "initialValue": [], "in": {"$concatArrays": ["$$value", "$$this"]}}},
    }
    by_key = {
        "_id": "$_id.k",
        **kept_per_key,
        "buyer": {"$max": part["buyer"]},
        "parts": {"$push": part},
    }
    first_part = {"$eq": ["$pi", 0]}
    first_rev = {"$eq": [{"$ifNull": ["$ri", 0]}, 0]}
    part_once = {"$and": [first_rev]}
    key_once = {"$and": [first_part, first_rev]}
    user_once = {"$and": [first_rev, {"$eq": ["$parts.xu", 1]}]}
    per_link: dict[str, Any] = {
        "_id": {"l": "$parts.l", "c": "$parts.revs.c"},
        "rev": {"$sum": "$parts.revs.rev"},
        "rev_n": {"$sum": "$parts.revs.n"},
        "subs": {"$sum": _flag(user_once)},
        "unsubs": {"$sum": _flag({"$and": [user_once, {"$ne": ["$parts.ft.u", None]}]})},
        "buyers": {"$sum": {"$cond": [part_once, "$parts.buyer", 0]}},
        "key_subs": {"$sum": _flag({"$and": [key_once, {"$ne": ["$_id", None]}, {"$ne": ["$ft", None]}]})},
        "premium_users": {"$sum": {"$cond": [key_once, "$prem", 0]}},
        "username_users": {"$sum": {"$cond": [key_once, "$named", 0]}},
        "key_buyers": {"$sum": {"$cond": [key_once, "$buyer", 0]}},
        "as_of": {"$max": "$as_of"},
    }
    for name in counted:
        per_link[name] = {"$sum": {"$cond": [part_once, f"$parts.{name}", 0]}}
    for n in RETENTION_DAYS:
        days_ms = n * MS_PER_DAY
        eligible = {"$and": [user_once, {"$lte": ["$parts.ft.s", {"$subtract": ["$as_of", days_ms]}]}]}
        stayed = {
            "$or": [
                {"$eq": ["$parts.ft.u", None]},
                {"$gte": ["$parts.ft.u", {"$add": ["$parts.ft.s", days_ms]}]},
            ]
        }
        per_link[f"elig_{n}"] = {"$sum": _flag(eligible)}
        per_link[f"kept_{n}"] = {"$sum": _flag({"$and": [eligible, stayed]})}
    return [
        *rows_pipeline(chunks_of(source_ids)),
        {"$project": row},
        {"$group": by_currency},
        {"$group": by_attribution},
        {"$group": by_link},
        {"$group": by_key},
        as_of_stage,
        {"$unwind": {"path": "$parts", "includeArrayIndex": "pi"}},
        {"$unwind": {"path": "$parts.revs", "includeArrayIndex": "ri", "preserveNullAndEmptyArrays": True}},
        {"$group": per_link},
    ]


def _decimal(value: Any) -> Decimal:
    if isinstance(value, Decimal128):
        return value.to_decimal()
    return Decimal(value or 0)


def totals_of_link_documents(docs: list[Document]) -> Totals:
    """Adds up the pipeline's (link, currency) documents into the report's `Totals`."""
    if not docs:
        return Totals()
    links: dict[str | None, dict[str, Any]] = {}
    report: dict[str, Any] = defaultdict(int)
    revenue: dict[str, Decimal] = {}
    revenue_rows: dict[str, int] = {}
    as_of: datetime | None = None
    summed = ("subs", "unsubs", "buyers", *(f"n_{s}" for s in ACTION_STATUSES))
    days = [f"{kind}_{n}" for n in RETENTION_DAYS for kind in ("elig", "kept")]
    for doc in docs:
        link = doc["_id"].get("l")
        acc = links.setdefault(link, {"revenue": {}, **dict.fromkeys((*summed, *days), 0)})
        for name in (*summed, *days):
            acc[name] += int(doc[name])
        for name in ("key_subs", "premium_users", "username_users", "key_buyers", "unsubs", *days):
            report[name] += int(doc[name])
        for status in ACTION_STATUSES:
            for prefix in ("n", "ps", "pn"):
                report[f"{prefix}_{status}"] += int(doc[f"{prefix}_{status}"])
        code = doc["_id"].get("c")
        if code is not None and int(doc["rev_n"]) > 0:
            amount = _decimal(doc["rev"])
            acc["revenue"][code] = acc["revenue"].get(code, 0) + amount
            revenue[code] = revenue.get(code, 0) + amount
            revenue_rows[code] = revenue_rows.get(code, 0) + int(doc["rev_n"])
        moment = doc.get("as_of")
        if moment is not None and (as_of is None or moment > as_of):
            as_of = moment
    return Totals(
        subs=report["key_subs"],
        premium_users=report["premium_users"],
        username_users=report["username_users"],
        buyers=report["key_buyers"],
        counts={s: report[f"n_{s}"] for s in ACTION_STATUSES},
        revenue=revenue,
        revenue_rows=revenue_rows,
        period_ms_sum={s: report[f"ps_{s}"] for s in ACTION_STATUSES},
        period_n={s: report[f"pn_{s}"] for s in ACTION_STATUSES},
        unsubs=report["unsubs"],
        as_of=as_of,
        retention_eligible={n: report[f"elig_{n}"] for n in RETENTION_DAYS},
        retention_kept={n: report[f"kept_{n}"] for n in RETENTION_DAYS},
        links=tuple(
            LinkTotals(
                invite_link=link,
                subs=acc["subs"],
                unsubs=acc["unsubs"],
                funnel=acc["n_funnel"],
                leads=acc["n_lead"],
                sales=acc["n_sale"],
                buyers=acc["buyers"],
                revenue=acc["revenue"],
                retention_eligible={n: acc[f"elig_{n}"] for n in RETENTION_DAYS},
                retention_kept={n: acc[f"kept_{n}"] for n in RETENTION_DAYS},
            )
            for link, acc in sorted(links.items(), key=lambda item: link_sort_key(item[0]))
        ),
    )


# Chunks fetched per round trip by the scan strategy: a chunk is a hundred rows, so a batch stays
# a few megabytes of BSON, far under the driver's 16 MB message cap.
SCAN_BATCH_CHUNKS = 50


def stored_value(value: Any) -> Any:
    """A computed figure as MongoDB keeps it: Decimal as Decimal128, inside maps and lists too."""
    if isinstance(value, Decimal):
        return Decimal128(value)
    if isinstance(value, dict):
        return {k: stored_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stored_value(v) for v in value]
    return value


def _version_is(version: int) -> Any:
    # A report made before inputs had versions has none: it is at version 0.
    return {"$not": {"$gt": 0}} if version == 0 else version


class AnalyticsRepository:
    """`strategy` picks how totals are computed (both give identical totals, tested):
    "aggregate" runs the `$group` pipeline in the database (best on MongoDB proper); "scan"
    streams the report's rows and folds them here (SecantusDB evaluates `$group` expressions in
    Python, far slower than it serves a plain find: docs/benchmarks.md, "Report recompute")."""

    def __init__(self, db: AsyncDatabase[Document], strategy: str = "aggregate") -> None:
        if strategy not in ("aggregate", "scan"):
            raise ValueError(f"unknown totals strategy {strategy!r}")
        self.strategy = strategy
        self.db = db
        self.reports = db[COLLECTIONS.reports]
        self.sources = db[COLLECTIONS.source_reports]
        self.sales = db[COLLECTIONS.sales]
        self.links = db[COLLECTIONS.report_links]
        self.links_answers = db[LINKS_ANSWER_COLLECTION]

    async def report(self, report_id: str) -> Document | None:
        return await self.reports.find_one({"_id": report_id})

    async def take_rows_version(self, report_id: str) -> int | None:
        """A rows version of the report's own for a recompute about to read its rows (None: the
        report is gone). See `shared.report_versions`."""
        return await bump_report_rows(self.db, report_id)

    async def totals(self, report_id: str, report_currency: str = DEFAULT_CURRENCY) -> Totals:
        """The report's totals; `report_currency` is that of rows stored without a currency."""
        sources = await self.sources.find(
            {"report_id": report_id}, projection={"_id": 1, "kind": 1, "status": 1, "totals": 1, "created_at": 1}
        ).to_list()
        # A file still being checked may have chunks stored ahead of its verdict (ingest reads large
        # files in parts, and removes them if the file fails): its rows count once it is accepted.
        sources = [s for s in sources if not (s.get("kind", "excel") == "excel" and s.get("status") in UNJUDGED)]
        if not sources:
            return Totals()
        if len(sources) == 1 and (stored := folded_at_ingest(sources[0])) is not None:
            return stored
        # File order across sources: by creation (first-touch ties go to the earlier upload).
        sources.sort(key=lambda s: (_utc(s.get("created_at")), str(s["_id"])))
        source_ids = [str(s["_id"]) for s in sources]
        if self.strategy == "scan":
            return await self.scanned_totals(source_ids, report_currency)
        known, as_of = excel_as_of(sources)
        return await self.aggregated_totals(source_ids, report_currency, as_of if known else UNKNOWN)

    async def scanned_totals(self, source_ids: list[str], report_currency: str = DEFAULT_CURRENCY) -> Totals:
        fold = TotalsFold(report_currency, {source_id: i for i, source_id in enumerate(source_ids)})
        # Whole chunks, unwound here: SecantusDB serves whole documents faster than projected or
        # unwound ones. The collector is paused meanwhile (shared.gc_pause says why).
        with paused_gc():
            async for chunk in self.sales.find(chunks_of(source_ids), batch_size=SCAN_BATCH_CHUNKS):
                for row in chunk["rows"]:
                    fold.add(row)
            return fold.result()

    async def aggregated_totals(
        self, source_ids: list[str], report_currency: str = DEFAULT_CURRENCY, as_of: Any = UNKNOWN
    ) -> Totals:
        cursor = await self.sales.aggregate(totals_pipeline(source_ids, report_currency, as_of), allowDiskUse=True)
        return totals_of_link_documents(await cursor.to_list())

    async def sources_settled(self, report_id: str) -> bool:
        """True when no source of the report is still being read or synced."""
        unsettled = await self.sources.count_documents(
            {"report_id": report_id, "status": {"$nin": list(FINAL_SOURCE_STATES)}}, limit=1
        )
        return unsettled == 0

    async def save_figures(
        self,
        report_id: str,
        fields: dict[str, Any],
        totals: Totals,
        *,
        computed_version: int,
        computed_from: Any,
        inputs_version: int,
        status: str | None = None,
        seconds: float | None = None,
    ) -> bool:
        """Writes the figures, the raw totals they came from and the inputs version they applied,
        unless a computation from a later rows version has written its own (replicas may
        recompute one report concurrently; a later version saw more writes) or the report's
        rates or costs have changed since they were read (False: the caller re-applies the new
        ones).

        `computed_version` is the report's rows version read before its rows
        (`shared.report_versions`): a recompute from stored totals passes the stored value, so it
        never claims rows it did not read. `computed_from` is when the recompute started, on the
        recomputing host's clock: shown, never compared."""
        update: dict[str, Any] = {
            **stored_value(fields),
            "totals": to_document(totals),
            "applied_inputs_version": inputs_version,
            "computed_version": computed_version,
            "computed_from": computed_from,
            "updated_at": datetime.now(UTC),
        }
        if status is not None:
            update.update(status=status, error_message=None)
        if seconds is not None:
            update["recompute_seconds"] = seconds
        result = await self.reports.update_one(
            # "Never computed, or computed from a version no later than this one", without an $or:
            # SecantusDB answers any query holding one by scanning every report of every user.
            # `$not $gt` also matches a missing or null computed_version, on MongoDB as on SecantusDB.
            {
                "_id": report_id,
                "computed_version": {"$not": {"$gt": computed_version}},
                "inputs_version": _version_is(inputs_version),
            },
            {"$set": update},
        )
        return result.matched_count == 1

    async def save_links(
        self,
        report_id: str,
        creator_id: Any,
        links: list[dict[str, Any]],
        *,
        computed_version: int,
        computed_from: Any,
        inputs_version: int,
    ) -> bool:
        """Replaces the report's links table unless a newer one is stored. Every saved state is
        newer in both its rows (computed_version) and its inputs (the version only grows), so the
        two guards together order them; an older table never overwrites a newer one."""
        document = {
            "creator_id": creator_id,
            "applied_inputs_version": inputs_version,
            "computed_version": computed_version,
            "computed_from": computed_from,
            "links": stored_value(links),
            # The answer's bytes, made once here, so that the gateway's read is one field.
            LINKS_JSON_FIELD: Binary(encode_links(links)),
        }
        newer_or_equal = {
            "_id": report_id,
            "computed_version": {"$not": {"$gt": computed_version}},
            "applied_inputs_version": {"$not": {"$gt": inputs_version}},
        }
        try:
            await self.links.update_one(newer_or_equal, {"$set": document}, upsert=True)
            # The answer's bytes alone in their own document, under the same guards: SecantusDB
            # reads a whole document whatever the projection, so the gateway's read of a 10 000-link
            # answer is one small document, not the entries beside it (shared/links_answer.py).
            answer = answer_document(creator_id, inputs_version, computed_from, links)
            answer["computed_version"] = computed_version
            await self.links_answers.update_one(newer_or_equal, {"$set": answer}, upsert=True)
        except DuplicateKeyError:  # the stored table is newer: the upsert found no match and collided
            return False
        return True
