"""A report's inputs beyond its rows — currency, exchange rates, link costs — and the links table.

Changing rates or costs saves them on the report, bumps its `inputs_version`, and asks analytics
to recompute (`RecomputeReport`); the caller then waits a bounded time (`recompute_wait_seconds`)
for analytics to say, through `applied_inputs_version`, that the saved figures use them. As with
uploads, the wait goes through MongoDB, so any gateway replica can answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from bson import Decimal128
from fastapi.exceptions import RequestValidationError
from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import User
from shared import contracts
from shared.broker import Bus
from shared.currency import DEFAULT_CURRENCY, CurrencyInvalid, normalise_currency, parse_rates
from shared.links_answer import LINKS_ANSWER_COLLECTION, LINKS_JSON_FIELD, encode_links
from shared.mongo import COLLECTIONS, Document

Reason = Literal["exchange_rates", "link_costs"]
_FIELD_OF: dict[Reason, str] = {"exchange_rates": "exchange_rates", "link_costs": "link_costs"}


def invalid(loc: tuple[str | int, ...], message: str, value: object) -> RequestValidationError:
    """A 422 in FastAPI's own shape (HTTPValidationError), as the OpenAPI document promises."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": value}])


# ----------------------------------------------------------------------------- validation (pure)


def creation_currency(text: str | None, default: str) -> str:
    """`currency` of POST /sales/create: a code or symbol → ISO 4217; the setting when not given."""
    if text is None or not text.strip():
        return normalise_currency(default)
    try:
        return normalise_currency(text)
    except CurrencyInvalid as exc:
        raise invalid(("query", "currency"), str(exc), text) from None


def creation_rates(text: str | None, currency: str) -> dict[str, Decimal]:
    """`rates` of POST /sales/create (`BRL:16.20,USD:95`), checked against the report's currency."""
    if text is None:
        return {}
    try:
        rates = parse_rates(text)
    except CurrencyInvalid as exc:
        raise invalid(("query", "rates"), str(exc), text) from None
    if currency in rates:
        raise invalid(("query", "rates"), own_rate_message(currency), text)
    return rates


def own_rate_message(currency: str) -> str:
    return f"{currency} is the report's own currency: it takes no exchange rate"


def normalise_rates(body: Mapping[str, Decimal], currency: str) -> dict[str, Decimal]:
    """A PUT body of rates with its keys as ISO codes (`$` → USD); a currency named twice (say
    `USD` and `$`) or the report's own currency is an error."""
    rates: dict[str, Decimal] = {}
    for key, rate in body.items():
        try:
            code = normalise_currency(key)
        except CurrencyInvalid as exc:
            raise invalid(("body", key), str(exc), key) from None
        if code in rates:
            raise invalid(("body", key), f"{code} is given twice", key)
        if code == currency:
            raise invalid(("body", key), own_rate_message(currency), key)
        rates[code] = rate
    return rates


def decimal128_map(values: Mapping[str, Decimal]) -> dict[str, Decimal128]:
    return {key: Decimal128(value) for key, value in values.items()}


# ----------------------------------------------------------------------------- database


async def report_currency(db: AsyncDatabase[Document], user: User, report_id: str) -> str | None:
    """The caller's report's currency, or None when the report is missing or someone else's."""
    doc = await db[COLLECTIONS.reports].find_one({"_id": report_id, "creator_id": user.id}, projection={"currency": 1})
    if doc is None:
        return None
    return str(doc.get("currency") or DEFAULT_CURRENCY)


@dataclass(frozen=True)
class Saved:
    """New inputs saved on a report, and whether analytics took the recompute command."""

    inputs_version: int
    published: bool


async def replace_inputs(
    db: AsyncDatabase[Document],
    bus: Bus,
    user: User,
    report_id: str,
    reason: Reason,
    values: Mapping[str, Decimal],
) -> Saved | None:
    """Replaces the report's rates or costs, bumps `inputs_version` and publishes the recompute.
    None when the report is missing or foreign. A broker outage leaves the inputs saved (analytics
    applies them on the report's next recompute) and says so through `published`."""
    doc = await db[COLLECTIONS.reports].find_one_and_update(
        {"_id": report_id, "creator_id": user.id},
        {"$set": {_FIELD_OF[reason]: decimal128_map(values)}, "$inc": {"inputs_version": 1}},
        projection={"inputs_version": 1},
        return_document=ReturnDocument.AFTER,
    )
    if doc is None:
        return None
    version = int(doc["inputs_version"])
    command = contracts.RecomputeReport(report_id=report_id, reason=reason, inputs_version=version)
    try:
        await bus.publish(command)
    except Exception:
        return Saved(version, published=False)
    return Saved(version, published=True)


async def report_applied(db: AsyncDatabase[Document], report_id: str, version: int) -> bool:
    """Whether the report's saved figures use inputs of at least `version`."""
    doc = await db[COLLECTIONS.reports].find_one({"_id": report_id}, projection={"applied_inputs_version": 1})
    applied = (doc or {}).get("applied_inputs_version")
    return isinstance(applied, int) and applied >= version


async def await_applied(
    db: AsyncDatabase[Document],
    applied: Callable[[AsyncDatabase[Document], str, int], Awaitable[bool]],
    report_id: str,
    version: int,
    wait_seconds: float,
) -> bool:
    """Polls `applied` (report_applied or links_applied) until it holds; False on timeout."""
    deadline = time.monotonic() + wait_seconds
    delay = 0.02
    while True:
        if await applied(db, report_id, version):
            return True
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(min(delay, max(deadline - time.monotonic(), 0)))
        delay = min(delay * 1.5, 0.25)


async def links_json(db: AsyncDatabase[Document], user: User, report_id: str) -> bytes | None:
    """The links answer of the caller's report as JSON bytes; `[]` while the report has never been
    computed; None when the report is missing or someone else's.

    One read: the answer's bytes in their own document (`shared.links_answer`). A report without
    one (a table saved before it existed) is answered from `report_links` — its kept bytes, or its
    entries encoded here — and the report itself is read only when there is no table at all, to
    tell "not computed yet" from "not yours"."""
    owned = {"_id": report_id, "creator_id": user.id}
    answer = await db[LINKS_ANSWER_COLLECTION].find_one(owned, projection={LINKS_JSON_FIELD: 1})
    if answer is not None and isinstance(answer.get(LINKS_JSON_FIELD), bytes):
        return bytes(answer[LINKS_JSON_FIELD])
    links = db[COLLECTIONS.report_links]
    doc = await links.find_one(owned, projection={LINKS_JSON_FIELD: 1})
    if doc is not None:
        kept = doc.get(LINKS_JSON_FIELD)
        if isinstance(kept, bytes):
            return kept
        full = await links.find_one(owned, projection={"links": 1})
        entries: list[Mapping[str, Any]] = list((full or {}).get("links") or [])
        return encode_links(entries)
    report = await db[COLLECTIONS.reports].find_one(owned, projection={"_id": 1})
    return None if report is None else b"[]"


async def links_applied(db: AsyncDatabase[Document], report_id: str, version: int) -> bool:
    """Whether the links the endpoint answers use inputs of at least `version`."""
    for collection in (LINKS_ANSWER_COLLECTION, COLLECTIONS.report_links):
        doc = await db[collection].find_one({"_id": report_id}, projection={"applied_inputs_version": 1})
        if doc is not None:
            applied = doc.get("applied_inputs_version")
            return isinstance(applied, int) and applied >= version
    return False
