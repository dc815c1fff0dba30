"""A stored sale row in the form the sales listing answers with (the API's `SaleRowSchema`, as
JSON). One declaration for the gateway, which writes the rows of a page it cuts from chunks or
gets from the database, and for ingest, which writes each row of a listing document already in
this form (shared/sale_listing.py), so that such a page is sent as the stored bytes, joined."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Final

from pydantic import TypeAdapter
from typing_extensions import TypedDict

from shared.decimal128 import stored_decimal
from shared.sale_rows import MS_PER_DAY

# The version of the JSON below that a listing document's rows were written in. Raise it with
# any change to what a row's JSON holds: rows written in another version are never sent (the
# page then comes from the chunks, as for a source without a listing).
ROW_JSON_VERSION: Final = 1


def utc_text(value: datetime) -> str:
    """A moment as the API writes it: ISO 8601 in UTC with a Z (a naive one is UTC already)."""
    if value.tzinfo is None:
        return f"{value.isoformat()}Z"
    text = value.isoformat()
    if text.endswith("+00:00"):  # what the database's UTC datetimes give, without a conversion
        return f"{text[:-6]}Z"
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_CENT = Decimal("0.01")


def cents(value: Decimal) -> float:
    """An amount as the API writes it: rounded half up to the cent."""
    return float(value.quantize(_CENT, rounding=ROUND_HALF_UP))


class SaleRowJson(TypedDict):
    """A sale row as SaleRowSchema writes it, its values already in their JSON form (moments as
    `utc_text`, amounts as `cents`), so a page is serialised without a model instance or a Python
    call per value, which were most of a page's CPU (docs/benchmarks.md, "Figures behind code
    comments"). SaleRowSchema stays the documented model; a test keeps the two writing the same
    bytes."""

    user_id: int | None
    name: str | None
    product: str | None
    purchase_amount: float | None
    username: str | None
    photo_url: str | None
    is_premium: bool
    phone_number: str | None
    birthdate: date | None
    status: str | None
    sub_date: str | None
    unsub_date: str | None
    action_date: str | None
    action_period: float | None
    invite_link: str | None


SALE_ROW_JSON: Final[TypeAdapter[SaleRowJson]] = TypeAdapter(SaleRowJson)


def sale_row_view(doc: Mapping[str, Any]) -> SaleRowJson:
    """A stored sale row as the listing writes it (SaleRowSchema's JSON, see SaleRowJson)."""
    amount, period_ms, birthdate = doc.get("purchase_amount"), doc.get("action_period_ms"), doc.get("birthdate")
    user_id, sub_date = doc.get("user_id"), doc.get("sub_date")
    unsub_date, action_date = doc.get("unsub_date"), doc.get("action_date")
    return {
        "user_id": None if user_id is None else int(user_id),
        "name": doc.get("name"),
        "product": doc.get("product"),
        "purchase_amount": None if amount is None else cents(stored_decimal(amount)),
        "username": doc.get("username"),
        "photo_url": doc.get("photo_url"),
        "is_premium": bool(doc.get("is_premium")),
        "phone_number": doc.get("phone_number"),
        "birthdate": birthdate.date() if isinstance(birthdate, datetime) else None,
        "status": doc.get("status"),
        "sub_date": None if sub_date is None else utc_text(sub_date),
        "unsub_date": None if unsub_date is None else utc_text(unsub_date),
        "action_date": None if action_date is None else utc_text(action_date),
        "action_period": None if period_ms is None else cents(Decimal(int(period_ms)) / MS_PER_DAY),
        "invite_link": doc.get("invite_link"),
    }


def sale_row_json(doc: Mapping[str, Any]) -> bytes:
    """A stored sale row's JSON, as one element of the listing's answer."""
    return SALE_ROW_JSON.dump_json(sale_row_view(doc))


def json_array(rows: Iterable[bytes]) -> bytes:
    """The listing's answer from its rows' JSON: what a list of them serialises to."""
    return b"[" + b",".join(rows) + b"]"
