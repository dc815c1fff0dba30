"""The Eduzz emulator as strict as the document's types allow and as surprising as its silences:
an integer `status` only, no promised order, sales that appear while a sync pages through."""

from __future__ import annotations

from typing import Any

import httpx

from deploy.sandbox import eduzz
from tests.unit.sandbox.conftest import EDUZZ_AUTH, client_of

PERIOD = {"start_date": "2024-01-01", "end_date": "2024-12-31"}


async def every_id(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> list[int]:
    ids: list[int] = []
    page, pages = 1, 1
    while page <= pages:
        answer = (await client.get("/orbita/v1/sales", params={**PERIOD, "page": page}, headers=headers)).json()
        pages = answer["pages"]
        ids.extend(item["id"] for item in answer["items"])
        page += 1
    return ids


async def test_status_must_be_an_integer(ez: httpx.AsyncClient) -> None:
    for name in ("paid", "Paga", "3.0", ""):
        answer = await ez.get("/orbita/v1/sales", params={**PERIOD, "status": name})
        assert answer.status_code == 400, name
        assert answer.json()["code"] == 400 and "status" in answer.json()["message"]
    refunded = (await ez.get("/orbita/v1/sales", params={**PERIOD, "status": 7})).json()
    assert refunded["total_items"] > 0 and {i["status"]["name"] for i in refunded["items"]} == {"Reembolsada"}
    nothing = (await ez.get("/orbita/v1/sales", params={**PERIOD, "status": 999})).json()
    assert nothing["total_items"] == 0 and nothing["items"] == []
    wrong_page = await ez.get("/orbita/v1/sales", params={**PERIOD, "page": "two"})
    assert wrong_page.status_code == 400 and wrong_page.json()["code"] == 400 and "page" in wrong_page.json()["message"]


async def test_the_listing_order_is_switchable(ez: httpx.AsyncClient) -> None:
    oldest = await every_id(ez)
    assert oldest == sorted(oldest) and len(oldest) == 300
    assert (await ez.post("/_sandbox/options", json={"order": "newest_first"})).json() == {"order": "newest_first"}
    newest = await every_id(ez)
    assert newest == oldest[::-1]
    shuffled = await every_id(ez, {"X-Sandbox-Order": "shuffled"})
    assert sorted(shuffled) == oldest and shuffled not in (oldest, newest)
    assert await every_id(ez, {"X-Sandbox-Order": "shuffled"}) == shuffled  # the same permutation each time
    assert (await ez.post("/_sandbox/options", json={"order": "sideways"})).status_code == 400


def test_the_start_option_picks_the_order() -> None:
    app = eduzz.create_app(size=5, order="newest_first")
    assert app.state.store.order == "newest_first"


async def test_sales_inserted_while_a_sync_pages_through(ez: httpx.AsyncClient) -> None:
    first = (await ez.get("/orbita/v1/sales", params={**PERIOD, "page": 1})).json()
    boundary = first["items"][-1]
    # Two new sales created before page 1's last sale, landing once two more pages were answered.
    scheduled = await ez.post(
        "/_sandbox/sales",
        json={"count": 2, "created_at": "2024-01-01T00:00:01Z", "status": "paid", "after_listing_requests": 2},
    )
    assert scheduled.json()["scheduled"] == 2
    second = (await ez.get("/orbita/v1/sales", params={**PERIOD, "page": 2})).json()
    assert second["total_items"] == 300  # not yet
    third = (await ez.get("/orbita/v1/sales", params={**PERIOD, "page": 3})).json()
    assert third["total_items"] == 300  # inserted right after this answer
    again = (await ez.get("/orbita/v1/sales", params={**PERIOD, "page": 2})).json()
    assert again["total_items"] == 302
    # Page 1 grew at its front: its old last sale is now the second item of page 2.
    assert again["items"][1]["id"] == boundary["id"]
    ids = await every_id(ez)
    assert len(ids) == len(set(ids)) == 302
    assert max(ids) == 100302 and ids[1:3] == [100301, 100302]  # after the very first sale, 00:00:00

    now = (await ez.post("/_sandbox/sales", json={"count": 1, "status": "waiting_payment", "total": 10.5})).json()
    sale: dict[str, Any] = (await ez.get(f"/orbita/v1/sales/{now['ids'][0]}")).json()
    assert sale["status"]["name"] == "Aguardando Pagamento" and sale["total_value"] == 10.5 and sale["paid_at"] is None
    assert (await ez.post("/_sandbox/sales", json={"status": "lost"})).status_code == 400


async def test_one_sales_details_404_and_extra_fields(ez: httpx.AsyncClient) -> None:
    await ez.post("/_sandbox/quirks", json={"quirks": ["missing_detail"], "ids": ["100005"]})
    gone = await ez.get("/orbita/v1/sales/100005")
    assert gone.status_code == 404 and gone.json() == {"code": 404, "message": "Dado não encontrado"}
    assert (await ez.get("/orbita/v1/sales/100006")).status_code == 200
    assert 100005 in await every_id(ez)
    await ez.post("/_sandbox/quirks", json={"quirks": ["extra_fields"], "ids": ["100006"]})
    assert "origin" in (await ez.get("/orbita/v1/sales/100006")).json()


async def test_seeding_with_a_share_of_refunds_and_changing_k_sales() -> None:
    async with client_of(eduzz.create_app(size=0)) as client:
        client.headers.update(EDUZZ_AUTH)
        await client.post("/_sandbox/reset", json={"size": 20_000, "seed": 4, "refund_share": 0.1})
        truth = (await client.get("/_sandbox/truth")).json()["sales"]
        share = sum(1 for s in truth if s["status"] == "refunded") / len(truth)
        assert len(truth) == 20_000 and 0.09 < share < 0.11
        changed = (await client.post("/_sandbox/change", json={"count": 100, "seed": 2})).json()
        after = {s["id"]: s for s in (await client.get("/_sandbox/truth")).json()["sales"]}
        before = {s["id"]: s for s in truth}
        assert changed["changed"] == 100
        assert all(before[i]["status"] == "paid" and after[i]["status"] == "refunded" for i in changed["ids"])
        assert sum(1 for i in after if after[i] != before[i]) == 100
        stats = (await client.get("/_sandbox/stats")).json()
        assert stats["calls"] == {}
        await client.get("/orbita/v1/sales/100001")
        await client.get("/orbita/v1/sales/100002")
        assert (await client.get("/_sandbox/stats")).json()["calls"] == {"GET /orbita/v1/sales/{id}": 2}
