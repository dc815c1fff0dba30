"""SweetClub under the connector contract, plus what only SweetClub has: writes (sale/add,
refund/add) whose answers are lost after they committed, and a session token kept between runs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import pytest

from services.connectors.platforms.base.http import HttpConfig, RetryPolicy
from services.connectors.platforms.base.session import MemorySession
from services.connectors.platforms.sweetclub.client import SweetClubClient
from services.connectors.platforms.sweetclub.models import SaleAddForm
from services.connectors.platforms.sweetclub.writes import create_sale, refund_sale
from shared.mongo import COLLECTIONS
from tests.connectors.conftest import Sandbox, control
from tests.connectors.contract import Expected, InProcess, PlatformContract, calls

USER = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}
HTTP = HttpConfig(timeout=1.0, connect_timeout=1.0, retry=RetryPolicy(attempts=3, base_delay=0.05, max_delay=0.2))
SALE = {"brand_id": "2", "product_type": "1", "product_quantity": "1", "product_unit": "1",
        "sale_channel_id": "1", "production_date": "2024-03-30"}  # fmt: skip


def sweetclub(url: str, session: MemorySession | None = None) -> SweetClubClient:
    return SweetClubClient(url, USER["username"], USER["password"], HTTP, session=session)


LOST = [{"fault": "commit_drop"}, {"fault": "commit_timeout", "delay": 1.5}, {"fault": "commit_500"}]


class TestSweetClub(PlatformContract):
    kind = "sweetclub"
    credentials = USER
    options: ClassVar[dict[str, Any]] = {"page_size": 100}
    listing_route = "GET /api/sale/list"
    detail_route = "GET /api/sale/info"
    odd_quirks = ("delivery_empty_array", "zero_dates", "extra_fields", "amounts_as_strings",
                  "listing_amounts_as_strings", "ids_as_numbers", "nulls", "missing_detail")  # fmt: skip
    quarantining_quirks = ("missing_detail",)

    def expected(self, truth: Any) -> Expected:
        return sorted(
            (s["id"], "sale" if s["status"] == "1" else "refunded", Decimal(s["total"])) for s in truth["sales"]
        )

    def last_day(self, truth: Any) -> str:
        return str(truth["sales"][-1]["date_added"])[:10]

    def late_listing_calls(self) -> int:
        return 1  # the refunds of the period (one page); no login (the token is kept), reference data cached

    async def test_the_session_token_is_kept_between_runs(self, engine: InProcess, url: str) -> None:
        conn, sr = await self.source(engine, url)
        await engine.run(conn, sr)
        await engine.run(conn, sr)
        assert calls(url)["POST /api/login"] == 1  # the second run reused the token kept on the connection
        stored = await engine.db[COLLECTIONS.connections].find_one({"_id": conn})
        assert stored is not None and "session" in stored
        assert stored["session"]["token"] not in str(control(url, "truth", method="GET"))  # sealed, not plain
        control(url, "faults", {"fault": "expire_token", "path": "/api/sale/list"})
        doc = await engine.run(conn, sr)
        assert doc["progress"]["state"] == "done" and calls(url)["POST /api/login"] == 2  # a 401: one new login


@pytest.mark.parametrize("fault", LOST, ids=lambda f: f["fault"])
@pytest.mark.parametrize("own_key", [True, False], ids=["caller-key", "generated-key"])
async def test_a_sale_whose_answer_is_lost_is_created_exactly_once(
    sandbox: Sandbox, fault: dict[str, Any], own_key: bool
) -> None:
    url = sandbox.sweetclub
    control(url, "reset", {"size": 20, "seed": 2})
    control(url, "faults", {**fault, "path": "/api/sale/add$", "method": "POST"})
    form = SaleAddForm.model_validate(
        {**SALE, "product_price": "321", **({"internal_order": "k-1"} if own_key else {})}
    )
    async with sweetclub(url, MemorySession()) as client:
        outcome = await create_sale(client, form)
    assert outcome.result == "already created" and outcome.sale_id is not None, outcome
    made = [s for s in control(url, "truth", method="GET")["sales"] if s["total"] == "321"]  # type: ignore[index]
    assert [s["id"] for s in made] == [outcome.sale_id]
    assert made[0]["internal_order"] == outcome.detail["internal_order"]
    assert (made[0]["internal_order"] == "k-1") is own_key
    assert calls(url)["POST /api/sale/add"] == 1


async def test_a_sale_add_that_never_arrived_is_sent_again(sandbox: Sandbox) -> None:
    url = sandbox.sweetclub
    control(url, "reset", {"size": 20, "seed": 2})
    control(url, "faults", {"fault": "500", "path": "/api/sale/add$", "method": "POST"})  # refused before the handler
    async with sweetclub(url) as client:
        outcome = await create_sale(client, SaleAddForm.model_validate({**SALE, "product_price": "77"}))
    assert outcome.result == "created" and outcome.attempts == 2 and outcome.lookups == 0
    assert [s["total"] for s in control(url, "truth", method="GET")["sales"]].count("77") == 1  # type: ignore[index]


@pytest.mark.parametrize("fault", LOST, ids=lambda f: f["fault"])
async def test_a_refund_whose_answer_is_lost_is_read_back_from_the_sale(
    sandbox: Sandbox, fault: dict[str, Any]
) -> None:
    url = sandbox.sweetclub
    control(url, "reset", {"size": 20, "seed": 2, "refund_share": 0})
    sale_id = control(url, "truth", method="GET")["sales"][3]["id"]  # type: ignore[index]
    control(url, "faults", {**fault, "path": "/api/refund/add$", "method": "POST"})
    async with sweetclub(url) as client:
        lost = await refund_sale(client, sale_id, "3")
        again = await refund_sale(client, sale_id, "3")  # a redelivered command
        refused = await refund_sale(client, "999999", "3")
    assert (lost.result, again.result, refused.result) == ("refunded", "already refunded", "refused")
    assert refused.platform_error == {"sale_id": "Возврат не произведен. Не корректный sale_id"}
    assert calls(url)["POST /api/refund/add"] == 3  # never repeated blind
