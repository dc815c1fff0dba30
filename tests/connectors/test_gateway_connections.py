"""The gateway's connections router over HTTP (ASGI), with the connectors service as a real
subprocess answering checks and SweetClub commands over the real broker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from bson import Decimal128, Int64
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from services.gateway.auth import create_user_token
from services.gateway.coalesce import ReadCoalescer
from services.gateway.routes.connections import router
from shared.broker import Bus, declare_topology, make_broker
from shared.mongo import COLLECTIONS, Document
from shared.settings import Settings
from tests.connectors.conftest import Sandbox, control
from tests.connectors.service import CHANNEL, ConnectorProcess, wait_for

SC_CREDENTIALS = {"username": "testapi@testapi.com", "password": "testapi@testapi.com"}


@pytest.fixture
async def api(settings: Settings, db: AsyncDatabase[Document], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    service = ConnectorProcess(settings, tmp_path)
    service.start()
    broker = make_broker(settings, registry=CollectorRegistry())
    await broker.connect()
    await declare_topology(broker, settings)
    app = FastAPI()
    app.include_router(router)
    app.state.settings, app.state.db, app.state.bus = settings, db, Bus(broker, settings)
    app.state.reads = ReadCoalescer()  # what services.gateway.main.create_app sets
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw") as client:
        yield client
    await broker.stop()
    service.stop()


async def auth(db: AsyncDatabase[Document], name: str) -> dict[str, str]:
    _, token = await create_user_token(db, name)
    return {"Authorization": f"Bearer {token}"}


async def test_connection_lifecycle_sync_and_commands(
    api: httpx.AsyncClient, db: AsyncDatabase[Document], sandbox: Sandbox
) -> None:
    control(sandbox.sweetclub, "reset", {"size": 300, "seed": 21})
    alice, mallory = await auth(db, "alice"), await auth(db, "mallory")
    assert (await api.get("/connections")).status_code == 401

    bad = await api.post(
        "/connections",
        headers=alice,
        json={
            "kind": "sweetclub",
            "channel_id": CHANNEL,
            "base_url": sandbox.sweetclub,
            "credentials": {"username": "x"},
        },
    )
    assert bad.status_code == 422

    created = await api.post(
        "/connections",
        headers=alice,
        json={
            "kind": "sweetclub",
            "channel_id": CHANNEL,
            "base_url": sandbox.sweetclub,
            "credentials": SC_CREDENTIALS,
            "poll_interval_seconds": 0,
            "options": {"page_size": 100},
        },
    )
    assert created.status_code == 201, created.text
    conn = created.json()
    assert "credentials" not in conn and SC_CREDENTIALS["password"] not in created.text
    stored = await db[COLLECTIONS.connections].find_one({"_id": conn["id"]})
    assert stored is not None and SC_CREDENTIALS["password"] not in str(stored)  # encrypted at rest

    assert [c["id"] for c in (await api.get("/connections", headers=alice)).json()] == [conn["id"]]
    assert (await api.get("/connections", headers=mallory)).json() == []
    assert (await api.get(f"/connections/{conn['id']}", headers=mallory)).status_code == 404
    assert (await api.post(f"/connections/{conn['id']}/check", headers=mallory)).status_code == 404

    check = await api.post(f"/connections/{conn['id']}/check", headers=alice)
    assert check.status_code == 200 and check.json()["state"] == "done", check.text
    assert check.json()["result"]["ok"] is True

    await db[COLLECTIONS.reports].insert_one(
        {
            "_id": "rep1",
            "creator_id": 1,
            "channel_id": Int64(CHANNEL),
            "name": "r",
            "budget": Decimal128("100"),
            "status": "pending",
        }
    )
    period = {"report_id": "rep1", "period_start": "2024-01-01", "period_end": "2025-12-31"}
    assert (await api.post(f"/connections/{conn['id']}/sources", headers=mallory, json=period)).status_code == 404
    attached = await api.post(f"/connections/{conn['id']}/sources", headers=alice, json=period)
    assert attached.status_code == 201, attached.text
    source = attached.json()
    assert source["kind"] == "connector" and source["status"] == "pending"

    synced = await api.post(f"/connections/{conn['id']}/sync", headers=alice, json={"source_report_id": source["id"]})
    assert synced.status_code == 202 and synced.json()["source_report_ids"] == [source["id"]]
    await wait_for(db, source["id"])
    progress = (await api.get(f"/connections/{conn['id']}/sources/{source['id']}", headers=alice)).json()
    assert progress["status"] == "success" and progress["progress"]["sales"] == 300
    assert progress["progress"]["pages"] == 4  # 3 full pages of 100 + the empty last one

    sale = await api.post(
        f"/connections/{conn['id']}/sweetclub/sales",
        headers=alice,
        json={
            "brand_id": "2",
            "product_type": "1",
            "product_quantity": "1",
            "product_unit": "2",
            "product_price": "500",
            "sale_channel_id": "1",
            "production_date": "2021-03-30",
            "delivery_date": "2021-04-02",
        },
    )
    assert sale.status_code == 200 and sale.json()["state"] == "done", sale.text
    sale_id = sale.json()["result"]["sales_id"][0]
    refused = await api.post(
        f"/connections/{conn['id']}/sweetclub/sales",
        headers=alice,
        json={
            "brand_id": "999",
            "product_type": "1",
            "product_quantity": "1",
            "product_unit": "1",
            "product_price": "1",
            "sale_channel_id": "1",
            "production_date": "2021-03-30",
        },
    )
    assert refused.json()["state"] == "rejected" and "brand_id" in refused.json()["result"]["error"]
    refund = await api.post(
        f"/connections/{conn['id']}/sweetclub/refunds",
        headers=alice,
        json={"sale_id": sale_id, "return_reason_id": "3", "comment": "ошибка"},
    )
    assert refund.json()["state"] == "done" and refund.json()["result"]["success"]
    again = await api.post(
        f"/connections/{conn['id']}/sweetclub/refunds",
        headers=alice,
        json={"sale_id": sale_id, "return_reason_id": "3"},
    )
    # A second refund of the same sale: SweetClub refuses it, the sale's status says it is refunded.
    assert again.json()["state"] == "done", again.text
    assert again.json()["result"]["outcome"] == "already refunded" and "sale_id" in again.json()["result"]["error"]
    truth = control(sandbox.sweetclub, "truth", method="GET")["sales"]  # type: ignore[index]
    assert any(s["id"] == sale_id and s["status"] == "0" for s in truth)

    assert (await api.delete(f"/connections/{conn['id']}", headers=mallory)).status_code == 404
    assert (await api.delete(f"/connections/{conn['id']}", headers=alice)).status_code == 204
    assert (await api.get(f"/connections/{conn['id']}", headers=alice)).status_code == 404


async def test_check_with_wrong_credentials_reports_the_api_error(
    api: httpx.AsyncClient, db: AsyncDatabase[Document], sandbox: Sandbox
) -> None:
    alice = await auth(db, "alice")
    conn = (
        await api.post(
            "/connections",
            headers=alice,
            json={
                "kind": "ofd",
                "channel_id": CHANNEL,
                "base_url": sandbox.ofd,
                "poll_interval_seconds": 0,
                "credentials": {"yandex_key": "sandbox-yandex-key", "ofd_key": "bad-secret-7f3a"},
            },
        )
    ).json()
    check = await api.post(f"/connections/{conn['id']}/check", headers=alice)
    body = check.json()
    assert body["state"] == "rejected" and body["result"]["ok"] is False and "keys refused" in body["error"]
    assert "bad-secret-7f3a" not in check.text

    # New keys from the user: the stored credentials are replaced (sealed) and the check passes.
    bad = await api.patch(f"/connections/{conn['id']}", headers=alice, json={"credentials": {"ofd_key": "x"}})
    assert bad.status_code == 422 and "yandex_key" in bad.text
    good = {"yandex_key": "sandbox-yandex-key", "ofd_key": "sandbox-ofd-key"}
    patched = await api.patch(
        f"/connections/{conn['id']}", headers=alice, json={"credentials": good, "name": "shop till"}
    )
    assert patched.status_code == 200 and patched.json()["name"] == "shop till"
    assert "sandbox-ofd-key" not in patched.text
    stored_doc = await db[COLLECTIONS.connections].find_one({"_id": conn["id"]})
    assert stored_doc is not None and "sandbox-ofd-key" not in str(stored_doc)
    body = (await api.post(f"/connections/{conn['id']}/check", headers=alice)).json()
    assert body["state"] == "done" and body["result"]["ok"] is True, body
    bob = await auth(db, "bob")
    assert (await api.patch(f"/connections/{conn['id']}", headers=bob, json={"name": "mine"})).status_code == 404
