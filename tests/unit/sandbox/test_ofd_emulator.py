"""The OFD emulator: late documents for earlier days, and day rows with elements missing or added,
as the document warns."""

from __future__ import annotations

from typing import Any

import httpx

BODY = {"date_from": "2024-01-01", "date_to": "2024-12-31", "interval": "day", "limit": 400,
        "document_types": ["receipt", "receiptCorrection", "bso", "bsoCorrection"]}  # fmt: skip


async def days(client: httpx.AsyncClient) -> dict[str, dict[str, Any]]:
    answer = (await client.post("/v1/docs/aggregations/sales", json=BODY)).json()
    return {row["start"]: row for row in answer["data"]}


async def test_a_late_receipt_changes_an_earlier_day(yo: httpx.AsyncClient) -> None:
    before = await days(yo)
    day = sorted(before)[3]
    truth_before = (await yo.get("/_sandbox/truth")).json()["days"][day]
    await yo.post("/_sandbox/receipts", json={"count": 2, "at": f"{day}T12:00:00"})
    after = await days(yo)
    assert after[day]["checks_income"] == before[day]["checks_income"] + 2
    assert after[day]["income"]["total"] > before[day]["income"]["total"]
    truth_after = (await yo.get("/_sandbox/truth")).json()["days"][day]
    assert truth_after["checks_income"] == truth_before["checks_income"] + 2
    assert {d: r for d, r in after.items() if d != day} == {d: r for d, r in before.items() if d != day}


async def test_change_adds_a_return_to_k_days(yo: httpx.AsyncClient) -> None:
    before = await days(yo)
    changed = (await yo.post("/_sandbox/change", json={"count": 5, "seed": 1})).json()
    assert changed["changed"] == 5
    after = await days(yo)
    for day in changed["ids"]:
        assert after[day]["income_return"]["total"] > before[day]["income_return"]["total"]
    assert sum(1 for d in after if after[d] != before[d]) == 5


async def test_missing_elements_and_extra_fields_per_day(yo: httpx.AsyncClient) -> None:
    plain = await days(yo)
    day = next(d for d, r in sorted(plain.items()) if r["income_return"]["total"] == 0)
    await yo.post("/_sandbox/quirks", json={"quirks": ["missing_elements", "extra_fields"], "ids": [day]})
    row = (await days(yo))[day]
    assert "income_return" not in row and "outcome" not in row and "income_avg" not in row
    assert row["income"]["total"] == plain[day]["income"]["total"]
    assert all(v for k, v in row["income"].items() if k != "total")  # zero parts left out
    assert row["service"] == {"shard": "a1", "cached": True}
    other = next(d for d in sorted(plain) if d != day)
    assert (await days(yo))[other] == plain[other]


async def test_a_listing_ordered_by_an_element_some_days_lack_still_answers(yo: httpx.AsyncClient) -> None:
    plain = await days(yo)
    lacking = [d for d, r in sorted(plain.items()) if r["income_return"]["total"] == 0][:3]
    await yo.post("/_sandbox/quirks", json={"quirks": ["missing_elements"], "ids": lacking})
    for order in ("income_return", "-outcome", "avg_receipt"):
        answer = await yo.post("/v1/docs/aggregations/sales", json={**BODY, "orders": [order]})
        assert answer.status_code == 200, (order, answer.text)
        assert {row["start"] for row in answer.json()["data"]} == set(plain)
    first = (await yo.post("/v1/docs/aggregations/sales", json={**BODY, "orders": ["income_return"]})).json()["data"]
    assert first[0]["start"] in lacking  # an absent element sorts as the zero it stands for
