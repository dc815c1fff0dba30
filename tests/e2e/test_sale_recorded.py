"""The public `sale recorded` event, end to end: valid sales land in the report once, however
often they are sent; an invalid event waits in the dead-letter queue with its reason."""

from __future__ import annotations

import asyncio
import json
import time

import aio_pika

from deploy.examples.publish_sale_recorded import publish
from shared import contracts, topology
from shared.deadletters import dlq_depths
from tests.e2e.conftest import Stack
from tests.e2e.test_upload_report import upload, wait_report
from tests.infra import stored_rows
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes


def _publish_with_settings(stack: Stack, event: contracts.SaleRecorded, monkeypatch) -> None:
    for key, value in stack.env.items():
        monkeypatch.setenv(key, value)
    from shared.settings import get_settings

    get_settings.cache_clear()
    asyncio.run(publish(event))
    get_settings.cache_clear()


def test_recorded_sales_land_once_and_bad_events_are_dead_lettered(stack: Stack, monkeypatch) -> None:
    r = upload(stack, "dave", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS))
    report = wait_report(stack, "dave", r.json()["report_id"])
    assert report["profit"] == 500.5 and report["sales"] == 2
    event = contracts.SaleRecorded(
        source="crm", report_id=report["id"], channel_id=report["channel_id"],
        sales=[contracts.RecordedSale(external_id="o-1", user_id=555, purchase_amount="99.50", product="Курс"),
               contracts.RecordedSale(external_id="o-2", purchase_amount="0.50")],
    )  # fmt: skip
    _publish_with_settings(stack, event, monkeypatch)
    _publish_with_settings(stack, event.model_copy(update={"message_id": "resent"}), monkeypatch)  # sent twice
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        report = wait_report(stack, "dave", report["id"])
        if report["sales"] == 4:
            break
        time.sleep(0.3)
    assert report["sales"] == 4 and report["profit"] == 600.5
    assert report["subs"] == 5  # platform buyers are not subscribers of the Excel sources
    assert len(stored_rows(stack.db(), {"report_id": report["id"], "source": "event"})) == 2
    assert {s["kind"] for s in report["source_reports"]} == {"excel", "event"}

    async def send_bad() -> None:
        connection = await aio_pika.connect(stack.settings.rabbit_url)
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            bus = await channel.get_exchange(topology.bus_exchange(stack.settings).name)
            bad = {
                "source": "crm",
                "report_id": report["id"],
                "channel_id": report["channel_id"],
                "sales": [{"external_id": "o-3", "purchase_amount": "-5"}],
            }
            await bus.publish(
                aio_pika.Message(json.dumps(bad).encode(), content_type="application/json"),
                routing_key=topology.SALE_RECORDED.routing_key,
            )

    asyncio.run(send_bad())
    dlq = topology.dead_letter_queue_name(stack.settings, topology.SALE_RECORDED)
    deadline = time.monotonic() + 20
    depth = 0
    while time.monotonic() < deadline and depth == 0:
        depth = asyncio.run(dlq_depths(stack.settings)).get(dlq, 0)
        time.sleep(0.3)
    assert depth == 1
    assert wait_report(stack, "dave", report["id"])["profit"] == 600.5  # the bad sale changed nothing
