"""Exchange rates, link costs and the links table through the whole gateway app (its own lifespan:
the real broker and the session's SecantusDB). Analytics is played by a task that takes the
RecomputeReport command off its real queue and writes what analytics writes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aio_pika
import httpx
import pytest
from bson import Binary, Decimal128, Int64
from fastapi import FastAPI
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import create_user_token
from services.gateway.main import create_app
from shared import topology
from shared.links_answer import encode_links
from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
async def app(settings: Settings, db: AsyncDatabase[Document]) -> AsyncIterator[FastAPI]:
    gateway = create_app(settings.model_copy(update={"recompute_wait_seconds": 3.0}))
    async with gateway.router.lifespan_context(gateway):
        yield gateway


@pytest.fixture
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw", timeout=30) as c:
        yield c


async def auth(db: AsyncDatabase[Document], name: str) -> tuple[int, dict[str, str]]:
    user, token = await create_user_token(db, name)
    return user.id, {"Authorization": f"Bearer {token}"}


async def seed(db: AsyncDatabase[Document], creator_id: int, report_id: str = "rep-1") -> None:
    await db[COLLECTIONS.reports].insert_one(
        {"_id": report_id, "name": "Spring", "created_at": T0, "updated_at": T0, "channel_id": Int64(-1001),
         "status": "success", "budget": Decimal128("1000"), "creator_id": creator_id, "currency": "RUB",
         "exchange_rates": {"USD": Decimal128("90")}, "link_costs": {}, "inputs_version": 0,
         "applied_inputs_version": 0, "profit": Decimal128("950"), "subs": 3,
         "profit_by_currency": {"RUB": Decimal128("50"), "USD": Decimal128("10"), "BRL": Decimal128("5")},
         "warnings": ["1 sale rows in BRL have no exchange rate and are not in profit"]}
    )  # fmt: skip


def link_entry(link: str | None, cost: str | None) -> dict[str, Any]:
    return {
        "invite_link": link, "subs": 2, "unsubs": 0, "net_subs": 2, "funnel": 0, "leads": 0, "sales": 1,
        "buyers": 1, "profit": Decimal128("950"), "cost": None if cost is None else Decimal128(cost),
        "romi": None, "cpc": None, "cpc_net": None, "cac": None, "cr_sales": Decimal128("50"),
        "retention_d1": None, "retention_d7": None, "retention_d30": None,
    }  # fmt: skip


async def play_analytics(settings: Settings, db: AsyncDatabase[Document], *, links: bool) -> dict[str, Any]:
    """Takes one RecomputeReport off analytics' queue and saves as analytics does; returns it."""
    connection = await aio_pika.connect(settings.rabbit_url)
    async with connection:
        channel = await connection.channel()
        queue = await channel.get_queue(topology.queue_name(settings, topology.RECOMPUTE_REPORT), ensure=False)
        for _ in range(200):
            message = await queue.get(fail=False)
            if message is not None:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("no RecomputeReport was published")
        await message.ack()
        command: dict[str, Any] = json.loads(message.body)
    report = await db[COLLECTIONS.reports].find_one({"_id": command["report_id"]})
    assert report is not None
    version = command["inputs_version"]
    await db[COLLECTIONS.reports].update_one(
        {"_id": report["_id"]}, {"$set": {"applied_inputs_version": version, "profit": Decimal128("1234.5")}}
    )
    if links:
        costs = report.get("link_costs") or {}
        entries = [link_entry("https://t.me/+a", str(costs["https://t.me/+a"].to_decimal()) if costs else None)]
        await db[COLLECTIONS.report_links].replace_one(
            {"_id": report["_id"]},
            {"_id": report["_id"], "creator_id": report["creator_id"], "applied_inputs_version": version,
             "links": entries, "links_json": Binary(encode_links(entries))},
            upsert=True,
        )  # fmt: skip
    return command


async def test_put_rates_saves_them_recomputes_and_answers_the_report(
    http: httpx.AsyncClient, db: AsyncDatabase[Document], settings: Settings
) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    analytics = asyncio.create_task(play_analytics(settings, db, links=False))
    r = await http.put("/sales/analytic/report/rep-1/exchange-rates", json={"$": "95", "brl": 16.2}, headers=headers)
    command = await analytics
    assert r.status_code == 200, r.text
    assert command["reason"] == "exchange_rates" and command["inputs_version"] == 1
    body = r.json()
    assert body["exchange_rates"] == {"USD": 95, "BRL": 16.2} and body["currency"] == "RUB"
    assert body["profit"] == 1234.5  # what "analytics" saved, not the old figure
    assert body["profit_by_currency"] == {"RUB": 50, "USD": 10, "BRL": 5}
    assert body["warnings"] == ["1 sale rows in BRL have no exchange rate and are not in profit"]
    stored = await db[COLLECTIONS.reports].find_one({"_id": "rep-1"})
    assert stored is not None and stored["inputs_version"] == 1
    assert stored["exchange_rates"] == {"USD": Decimal128("95"), "BRL": Decimal128("16.2")}


async def test_bad_rates_are_422_and_change_nothing(http: httpx.AsyncClient, db: AsyncDatabase[Document]) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    for body, needle in (
        ({"RUB": 2}, "own currency"),
        ({"₽": 2}, "own currency"),
        ({"USD": 95, "$": 96}, "given twice"),
        ({"XYZ": 1}, "ISO 4217"),
        ({"USD": 0}, "greater than 0"),
        ({"USD": "abc"}, "decimal"),
        ({"USD": -1}, "greater than 0"),
    ):
        r = await http.put("/sales/analytic/report/rep-1/exchange-rates", json=body, headers=headers)
        assert r.status_code == 422, (body, r.text)
        assert needle in json.dumps(r.json(), ensure_ascii=False), (body, r.text)
    stored = await db[COLLECTIONS.reports].find_one({"_id": "rep-1"})
    assert (
        stored is not None and stored["inputs_version"] == 0 and stored["exchange_rates"] == {"USD": Decimal128("90")}
    )


async def test_put_costs_answers_the_recomputed_links(
    http: httpx.AsyncClient, db: AsyncDatabase[Document], settings: Settings
) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    assert (await http.get("/sales/analytic/report/rep-1/links", headers=headers)).json() == []  # never computed
    analytics = asyncio.create_task(play_analytics(settings, db, links=True))
    r = await http.put("/sales/analytic/report/rep-1/links/costs", json={"https://t.me/+a": 5000.5}, headers=headers)
    command = await analytics
    assert r.status_code == 200, r.text
    assert command["reason"] == "link_costs" and command["inputs_version"] == 1
    assert [(e["invite_link"], e["cost"], e["profit"]) for e in r.json()] == [("https://t.me/+a", 5000.5, 950.0)]
    again = await http.get("/sales/analytic/report/rep-1/links", headers=headers)
    assert again.status_code == 200 and again.json() == r.json()
    stored = await db[COLLECTIONS.reports].find_one({"_id": "rep-1"})
    assert stored is not None and stored["link_costs"] == {"https://t.me/+a": Decimal128("5000.5")}


async def test_links_without_kept_bytes_are_encoded_from_the_entries(
    http: httpx.AsyncClient, db: AsyncDatabase[Document]
) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    entries = [link_entry("https://t.me/+a", "10"), link_entry(None, None)]
    await db[COLLECTIONS.report_links].insert_one({"_id": "rep-1", "creator_id": uid, "links": entries})
    r = await http.get("/sales/analytic/report/rep-1/links", headers=headers)
    assert r.status_code == 200
    assert r.content == encode_links(entries)
    assert [e["invite_link"] for e in r.json()] == ["https://t.me/+a", None]


async def test_no_recompute_in_time_is_202_with_the_new_version(
    http: httpx.AsyncClient, db: AsyncDatabase[Document]
) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    r = await http.put("/sales/analytic/report/rep-1/links/costs", json={"x": 1}, headers=headers)
    assert r.status_code == 202, r.text
    assert r.json()["inputs_version"] == 1 and "being recomputed" in r.json()["detail"]
    r = await http.put("/sales/analytic/report/rep-1/exchange-rates", json={}, headers=headers)
    assert r.status_code == 202 and r.json()["inputs_version"] == 2


async def test_someone_elses_report_is_404_everywhere(http: httpx.AsyncClient, db: AsyncDatabase[Document]) -> None:
    uid, _ = await auth(db, "alice")
    _, mallory = await auth(db, "mallory")
    await seed(db, uid)
    await db[COLLECTIONS.report_links].insert_one({"_id": "rep-1", "creator_id": uid, "links": []})
    for method, path, body in (
        ("GET", "/sales/analytic/report/rep-1/links", None),
        ("PUT", "/sales/analytic/report/rep-1/links/costs", {"a": 1}),
        ("PUT", "/sales/analytic/report/rep-1/exchange-rates", {"USD": 1}),
        ("GET", "/sales/analytic/report/missing/links", None),
    ):
        r = await http.request(method, path, json=body, headers=mallory)
        assert r.status_code == 404, (path, r.text)
        assert (await http.request(method, path, json=body)).status_code == 401
    stored = await db[COLLECTIONS.reports].find_one({"_id": "rep-1"})
    assert stored is not None and stored["inputs_version"] == 0 and stored["link_costs"] == {}


async def test_link_cost_bodies_are_validated(http: httpx.AsyncClient, db: AsyncDatabase[Document]) -> None:
    uid, headers = await auth(db, "alice")
    await seed(db, uid)
    for body in (
        {"a": -1},
        {"": 5},
        {"x" * 501: 5},
        {"a": "1e400"},
        {"a": 1.001},
        [1],
        {str(i): 1 for i in range(10_001)},
    ):
        r = await http.put("/sales/analytic/report/rep-1/links/costs", json=body, headers=headers)
        assert r.status_code == 422, (str(body)[:80], r.text[:300])
