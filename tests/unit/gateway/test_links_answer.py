"""shared.links_answer: the bytes analytics keeps for the links endpoint are exactly what the
documented response model (schemas.LinkSchema) would serialise, with every field, in order."""

from __future__ import annotations

import json
from decimal import Decimal

from bson import Decimal128, Int64
from pydantic import TypeAdapter

from services.gateway.schemas import LinkSchema
from shared.links_answer import LINK_FIELDS, encode_links

LINKS = TypeAdapter(list[LinkSchema])


def entry(link: str | None, **overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "invite_link": link, "subs": Int64(3), "unsubs": 1, "net_subs": 2, "funnel": 0, "leads": 1, "sales": 2,
        "buyers": 1, "profit": Decimal128("1990.505"), "cost": Decimal128("5000"), "romi": Decimal128("-60.19"),
        "cpc": Decimal128("1666.666666"), "cpc_net": Decimal128("2500"), "cac": Decimal128("5000"),
        "cr_sales": Decimal128("66.67"), "retention_d1": Decimal128("66.67"), "retention_d7": None,
        "retention_d30": None,
    }  # fmt: skip
    base.update(overrides)
    return base


def plain(doc: dict[str, object]) -> dict[str, object]:
    return {k: v.to_decimal() if isinstance(v, Decimal128) else v for k, v in doc.items()}


def test_bytes_equal_the_response_model_serialisation() -> None:
    entries = [entry("https://t.me/+Абв"), entry(None, cost=None, romi=None, profit=Decimal128("0"))]
    kept = encode_links(entries)
    assert kept == LINKS.dump_json(LINKS.validate_python([plain(e) for e in entries]))
    answer = json.loads(kept)
    assert [list(item) for item in answer] == [list(LINK_FIELDS)] * 2
    assert answer[0]["profit"] == 1990.51 and answer[0]["cpc"] == 1666.67  # half-up, 2 decimals
    assert answer[0]["invite_link"] == "https://t.me/+Абв" and answer[0]["subs"] == 3
    assert answer[1]["invite_link"] is None and answer[1]["cost"] is None and answer[1]["profit"] == 0.0


def test_a_missing_field_is_null_and_unknown_fields_stay_out() -> None:
    stored = entry("a", extra="internal")
    del stored["retention_d30"]
    [item] = json.loads(encode_links([stored]))
    assert list(item) == list(LINK_FIELDS) and item["retention_d30"] is None
    assert encode_links([]) == b"[]"
    assert json.loads(encode_links([entry("b", profit=Decimal("2.345"))]))[0]["profit"] == 2.35
