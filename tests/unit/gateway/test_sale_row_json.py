"""The sales listing writes its rows from SaleRowJson (values already in their JSON form), each
row on its own (a listing document holds them so) and a page as those joined: the bytes must be
exactly those of the documented SaleRowSchema, built from the same stored rows."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from bson import Decimal128, Int64
from pydantic import TypeAdapter

from services.gateway.schemas import SaleRowSchema
from shared.sale_row_json import json_array, sale_row_json, utc_text
from shared.sale_rows import MS_PER_DAY

DOCUMENTED = TypeAdapter(list[SaleRowSchema])
T0 = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)


def model_row(doc: dict[str, Any]) -> dict[str, Any]:
    """A stored row as SaleRowSchema's fields, the plain way (the values, not their JSON form)."""
    amount, period = doc.get("purchase_amount"), doc.get("action_period_ms")
    birthdate = doc.get("birthdate")
    return {
        "user_id": None if doc.get("user_id") is None else int(doc["user_id"]),
        "name": doc.get("name"), "product": doc.get("product"),
        "purchase_amount": amount.to_decimal() if isinstance(amount, Decimal128) else amount,
        "username": doc.get("username"), "photo_url": doc.get("photo_url"),
        "is_premium": bool(doc.get("is_premium")), "phone_number": doc.get("phone_number"),
        "birthdate": birthdate.date() if isinstance(birthdate, datetime) else None,
        "status": doc.get("status"), "sub_date": doc.get("sub_date"), "unsub_date": doc.get("unsub_date"),
        "action_date": doc.get("action_date"),
        "action_period": None if period is None else Decimal(int(period)) / MS_PER_DAY,
        "invite_link": doc.get("invite_link"),
    }  # fmt: skip


def moment(rnd: random.Random) -> datetime | None:
    when = T0 + timedelta(milliseconds=rnd.randrange(-(10**11), 10**11))
    shape = rnd.randrange(5)
    if shape == 0:
        return None
    if shape == 1:
        return when.replace(tzinfo=None)  # a naive moment is UTC
    if shape == 2:
        return when.astimezone(timezone(timedelta(hours=rnd.randrange(-12, 15))))
    return when


def amount(rnd: random.Random) -> object:
    cents = rnd.randrange(-(10**9), 10**9)
    shape = rnd.randrange(6)
    if shape == 0:
        return None
    if shape == 1:
        return Decimal128(Decimal(cents) / 1000)  # half-cents and beyond round half up
    if shape == 2:
        return rnd.randrange(10**6)
    if shape == 3:
        return cents / 100
    return Decimal128(Decimal(cents).scaleb(-2))


def stored_row(rnd: random.Random) -> dict[str, Any]:
    return {
        "user_id": rnd.choice((None, Int64(rnd.randrange(10**12)), rnd.randrange(10**6))),
        "name": rnd.choice((None, "Ёжик", "Anna \"A\" \\ n", "日本")), "product": rnd.choice((None, "Course A")),
        "purchase_amount": amount(rnd), "username": rnd.choice((None, "u1")), "photo_url": None,
        "is_premium": rnd.choice((True, False, None)), "phone_number": rnd.choice((None, "+7999")),
        "birthdate": rnd.choice((None, datetime(1990, 5, 17, tzinfo=UTC), datetime(2001, 1, 2))),
        "status": rnd.choice((None, "sale", "lead", "funnel")), "sub_date": moment(rnd),
        "unsub_date": moment(rnd), "action_date": moment(rnd),
        "action_period_ms": rnd.choice((None, Int64(rnd.randrange(-10**10, 10**10)), rnd.randrange(10**9))),
        "invite_link": rnd.choice((None, "https://t.me/+abc")),
    }  # fmt: skip


def test_a_page_is_written_as_the_documented_model_writes_it() -> None:
    rnd = random.Random(2026)
    for _ in range(300):
        page = [stored_row(rnd) for _ in range(rnd.randrange(1, 30))]
        expected = DOCUMENTED.dump_json(DOCUMENTED.validate_python([model_row(doc) for doc in page]))
        assert json_array(sale_row_json(doc) for doc in page) == expected


def test_utc_text_of_every_kind_of_moment() -> None:
    assert utc_text(datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) == "2026-03-01T12:00:00Z"
    assert utc_text(datetime(2026, 3, 1, 12, 0, 0, 5000)) == "2026-03-01T12:00:00.005000Z"
    assert utc_text(datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=3)))) == "2026-03-01T12:00:00Z"
