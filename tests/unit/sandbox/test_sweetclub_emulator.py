"""The SweetClub emulator's strict and surprising sides: writes that commit and lose their answer,
odd `sale/info` payloads per sale, call counters, fixtures at scale."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from deploy.sandbox import sweetclub
from tests.unit.sandbox.conftest import client_of, sweetclub_token

SALE_FORM = {
    "brand_id": "2",
    "product_type": "1",
    "product_quantity": "1",
    "product_unit": "1",
    "product_price": "500",
    "sale_channel_id": "1",
    "production_date": "2024-03-30",
    "delivery_date": "2024-04-02",
}


def newest(client: httpx.Client, n: int = 5) -> list[dict[str, Any]]:
    listed = client.get("/api/sale/list", params={"sort": "s.id", "order": "DESC", "limit": n})
    return listed.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("fault", "lost"),
    [
        ("commit_drop", (httpx.RemoteProtocolError, httpx.ReadError)),
        ("commit_timeout", (httpx.ReadTimeout,)),
        ("commit_500", ()),
    ],
)
def test_a_write_commits_then_its_answer_is_lost(
    sweetclub_server: str, fault: str, lost: tuple[type[Exception], ...]
) -> None:
    with httpx.Client(base_url=sweetclub_server, timeout=0.5) as client:
        token = client.post("/api/login", data={"username": "testapi@testapi.com", "password": "testapi@testapi.com"})
        client.headers["Authorization"] = f"Bearer {token.json()['api_token']}"
        before = newest(client, 1)[0]["sale_id"]
        rule = {"fault": fault, "path": "/api/sale/add$", "method": "POST", "delay": 1.5}
        client.post("/_sandbox/faults", json=rule).raise_for_status()
        form = {**SALE_FORM, "internal_order": f"sw-{fault}"}
        if lost:
            with pytest.raises(lost):
                client.post("/api/sale/add", data=form)
        else:
            answer = client.post("/api/sale/add", data=form)
            assert answer.status_code == 500 and "sales_id" not in answer.text
        time.sleep(1.6 if fault == "commit_timeout" else 0)  # the held answer has been dropped by now
        created = newest(client, 1)[0]
        assert int(created["sale_id"]) == int(before) + 1  # the write took effect, exactly once
        info = client.get("/api/sale/info", params={"sale_id": created["sale_id"]}).json()
        assert info["sale_info"]["internal_order"] == f"sw-{fault}"  # the key a lookup finds it by

        client.post("/_sandbox/faults", json={**rule, "path": "/api/refund/add$"}).raise_for_status()
        refund = {"sale_id": created["sale_id"], "return_reason_id": "4"}
        if lost:
            with pytest.raises(lost):
                client.post("/api/refund/add", data=refund)
        else:
            assert client.post("/api/refund/add", data=refund).status_code == 500
        time.sleep(1.6 if fault == "commit_timeout" else 0)
        assert client.get("/api/sale/info", params={"sale_id": created["sale_id"]}).json()["sale_info"]["status"] == "0"
        again = client.post("/api/refund/add", data=refund).json()  # a blind retry is refused
        assert again == {"error": {"sale_id": "Возврат не произведен. Не корректный sale_id"}}
        stats = client.get("/_sandbox/stats").json()
        assert stats["faults_served"][fault] == 2
        assert stats["calls"]["POST /api/sale/add"] == 1 and stats["calls"]["POST /api/refund/add"] == 2


async def test_a_rule_for_one_method_and_exact_path_spares_the_others(sc: httpx.AsyncClient) -> None:
    await sc.post("/_sandbox/faults", json={"fault": "500", "path": "/api/sale/add$", "method": "POST"})
    assert (await sc.get("/api/sale/list")).status_code == 200
    assert (await sc.get("/api/sale/info", params={"sale_id": "40001"})).status_code == 200
    assert (await sc.post("/api/sale/add", data=SALE_FORM)).status_code == 500
    assert (await sc.post("/api/sale/add", data=SALE_FORM)).json()["success"] == "Заказ создан"


async def test_sale_add_keeps_internal_order_and_a_zero_production_date(sc: httpx.AsyncClient) -> None:
    form = {**SALE_FORM, "internal_order": "31415926525897932384626", "not_production_date": "1"}
    sale_id = (await sc.post("/api/sale/add", data=form)).json()["sales_id"][0]
    info = (await sc.get("/api/sale/info", params={"sale_id": sale_id})).json()["sale_info"]
    assert info["internal_order"] == "31415926525897932384626"
    assert info["production_date"] == "0000-00-00 00:00:00"
    # Nothing dedupes by internal_order: the same command twice is two sales, as on the platform.
    second = (await sc.post("/api/sale/add", data=form)).json()["sales_id"][0]
    assert second == sale_id + 1


async def test_sale_info_quirks_per_sale(sc: httpx.AsyncClient) -> None:
    plain = (await sc.get("/api/sale/info", params={"sale_id": "40010"})).json()
    set_ = await sc.post(
        "/_sandbox/quirks",
        json={
            "quirks": ["delivery_empty_array", "zero_dates", "extra_fields", "amounts_as_strings", "ids_as_numbers"],
            "ids": ["40010"],
        },
    )
    assert set_.json()["ids"] == ["40010"]
    odd = (await sc.get("/api/sale/info", params={"sale_id": "40010"})).json()
    info = odd["sale_info"]
    assert odd["delivery"] == []
    assert info["production_date"] == "0000-00-00 00:00:00" and info["date_modified"] == "0000-00-00 00:00:00"
    assert info["products"][0]["production_date"] == "0000-00-00 00:00:00"
    assert isinstance(info["total"], str) and info["total"] == f"{plain['sale_info']['total']:.2f}"
    assert isinstance(info["products"][0]["price"], str)
    assert info["id"] == 40010 and isinstance(info["status"], int)
    assert "region_id" in info and "warnings" in odd and "meta" in info["products"][0]
    assert info["date_added"] == plain["sale_info"]["date_added"]  # the sale's own date stays readable
    # The neighbour is untouched, and the listing shows the odd sale as documented.
    assert (await sc.get("/api/sale/info", params={"sale_id": "40011"})).json()["sale_info"]["id"] == "40011"
    listed = (await sc.get("/api/sale/list", params={"order": "ASC", "limit": 20})).json()
    assert next(r for r in listed if r["sale_id"] == 40010)["status"] in (0, 1)  # ids_as_numbers
    assert isinstance(next(r for r in listed if r["sale_id"] == 40010)["total"], (int, float))

    await sc.post("/_sandbox/quirks", json={"quirks": ["listing_amounts_as_strings", "nulls"], "ids": ["40012"]})
    row = next(r for r in (await sc.get("/api/sale/list", params={"order": "ASC", "limit": 20})).json()
               if r["sale_id"] == "40012")  # fmt: skip
    assert isinstance(row["total"], str) and isinstance(row["commission_total"], str)
    nulls = (await sc.get("/api/sale/info", params={"sale_id": "40012"})).json()["sale_info"]
    assert nulls["comment"] is None and nulls["internal_order"] is None and nulls["production_date"] is None


async def test_one_sales_details_404_while_it_is_listed(sc: httpx.AsyncClient) -> None:
    await sc.post("/_sandbox/quirks", json={"quirks": ["missing_detail"], "ids": ["40020"]})
    gone = await sc.get("/api/sale/info", params={"sale_id": "40020"})
    assert gone.status_code == 404 and "error" in gone.json()
    assert (await sc.get("/api/sale/info", params={"sale_id": "40021"})).status_code == 200
    listed = (await sc.get("/api/sale/list", params={"order": "ASC", "limit": 30})).json()
    assert "40020" in [r["sale_id"] for r in listed]


async def test_quirks_by_share_everywhere_header_and_cleared(sc: httpx.AsyncClient) -> None:
    chosen = (await sc.post("/_sandbox/quirks", json={"quirks": ["missing_detail"], "share": 0.1, "seed": 3})).json()
    assert len(chosen["ids"]) == 30
    again = (await sc.post("/_sandbox/quirks", json={"quirks": ["missing_detail"], "share": 0.1, "seed": 3})).json()
    assert again["ids"] == chosen["ids"]  # deterministic
    statuses = [(await sc.get("/api/sale/info", params={"sale_id": i})).status_code for i in chosen["ids"][:5]]
    assert statuses == [404] * 5
    await sc.delete("/_sandbox/quirks")
    assert (await sc.get("/api/sale/info", params={"sale_id": chosen["ids"][0]})).status_code == 200

    await sc.post("/_sandbox/quirks", json={"quirks": ["delivery_empty_array"]})
    new = (await sc.post("/api/sale/add", data=SALE_FORM)).json()["sales_id"][0]
    assert (await sc.get("/api/sale/info", params={"sale_id": new})).json()["delivery"] == []
    await sc.delete("/_sandbox/quirks")
    by_header = await sc.get("/api/sale/info", params={"sale_id": "40001"}, headers={"X-Sandbox-Quirks": "zero_dates"})
    assert by_header.json()["sale_info"]["date_modified"] == "0000-00-00 00:00:00"
    unknown = await sc.post("/_sandbox/quirks", json={"quirks": ["no_such_quirk"]})
    assert unknown.status_code == 400


async def test_stats_count_calls_per_route_and_answer_and_reset(sc: httpx.AsyncClient) -> None:
    await sc.delete("/_sandbox/stats")
    await sc.get("/api/sale/list", params={"limit": 100})
    for sale_id in ("40001", "40002", "99999"):
        await sc.get("/api/sale/info", params={"sale_id": sale_id})
    await sc.post("/_sandbox/faults", json={"fault": "429", "path": "/api/sale/list"})
    await sc.get("/api/sale/list")
    stats = (await sc.get("/_sandbox/stats")).json()
    assert stats["calls"] == {"GET /api/sale/list": 2, "GET /api/sale/info": 3}
    assert stats["answers"]["GET /api/sale/info"] == {"200": 2, "404": 1}
    assert stats["answers"]["GET /api/sale/list"] == {"200": 1, "429": 1}
    assert stats["requests"]["/api/sale/info"] == 3
    cleared = (await sc.delete("/_sandbox/stats")).json()
    assert cleared["calls"] == {} and cleared["requests"] == {} and cleared["faults_served"] == {}
    assert len((await sc.get("/api/sale/list", params={"limit": 1000})).json()) == 300  # data untouched


async def test_seeding_at_scale_with_a_share_of_refunds_then_changing_k_sales() -> None:
    app = sweetclub.create_app(size=0)
    async with client_of(app) as client:
        started = time.monotonic()
        reset = await client.post("/_sandbox/reset", json={"size": 50_000, "seed": 9, "refund_share": 0.25})
        seeded_in = time.monotonic() - started
        assert reset.json() == {"size": 50_000}
        assert seeded_in < 30, f"seeding 50 000 sales took {seeded_in:.1f}s"
        truth = (await client.get("/_sandbox/truth")).json()["sales"]
        refunded = sum(1 for s in truth if s["status"] == "0")
        assert len(truth) == 50_000 and 0.24 < refunded / 50_000 < 0.26

        client.headers.update(await sweetclub_token(client))
        changed = (await client.post("/_sandbox/change", json={"count": 100, "seed": 1})).json()
        assert changed["changed"] == 100 and len(set(changed["ids"])) == 100
        after = {s["id"]: s for s in (await client.get("/_sandbox/truth")).json()["sales"]}
        before = {s["id"]: s for s in truth}
        assert all(before[i]["status"] == "1" and after[i]["status"] == "0" for i in changed["ids"])
        assert sum(1 for i in after if after[i] != before[i]) == 100
        info = (await client.get("/api/sale/info", params={"sale_id": changed["ids"][0]})).json()["sale_info"]
        assert info["status"] == "0"

        priced = (
            await client.post("/_sandbox/change", json={"count": 3, "field": "total", "since": "2024-12-01"})
        ).json()
        later = {s["id"]: s for s in (await client.get("/_sandbox/truth")).json()["sales"]}
        for sale_id in priced["ids"]:
            assert float(later[sale_id]["total"]) == float(after[sale_id]["total"]) + 1
            assert later[sale_id]["date_added"] >= "2024-12-01"
