"""apply_refund against the real database: it marks exactly the refunded sale's rows (one per
source report of that connection) and asks analytics to recompute each report that held one."""

from __future__ import annotations

from pymongo.asynchronous.database import AsyncDatabase

from services.connectors.commands import apply_refund
from services.connectors.config import ConnectorSettings
from services.connectors.platforms.base.rows import row_id
from services.connectors.sync import Services
from shared import contracts
from shared.broker import Bus
from shared.mongo import COLLECTIONS, Document
from shared.sale_chunks import pack, rows_pipeline, single
from shared.settings import Settings


class RecordingBus(Bus):
    """Keeps what would be published: this test is about which rows change, not about delivery."""

    def __init__(self) -> None:
        self.published: list[contracts.Message] = []

    async def publish(self, message: contracts.Message) -> None:
        self.published.append(message)


def sale_row(source_report_id: str, report_id: str, external_id: str, connection_id: str | None) -> Document:
    extra = None if connection_id is None else {"connection_id": connection_id, "external_id": external_id}
    return {
        "_id": row_id(source_report_id, external_id),
        "report_id": report_id,
        "source_report_id": source_report_id,
        "status": "sale",
        "extra": extra,
    }


async def test_a_refund_marks_the_sale_in_every_source_of_its_connection_and_nothing_else(
    db: AsyncDatabase[Document], settings: Settings
) -> None:
    await db[COLLECTIONS.source_reports].insert_many(
        [
            {"_id": "a1", "report_id": "rA", "kind": "connector", "connection_id": "connA"},
            {"_id": "a2", "report_id": "rB", "kind": "connector", "connection_id": "connA"},
            {"_id": "b1", "report_id": "rA", "kind": "connector", "connection_id": "connB"},
            {"_id": "x1", "report_id": "rA", "kind": "excel"},
        ]
    )
    await db[COLLECTIONS.sales].insert_many(
        [
            *map(
                single,
                [
                    sale_row("a1", "rA", "77", "connA"),
                    sale_row("a2", "rB", "77", "connA"),
                    sale_row("a1", "rA", "78", "connA"),  # another sale of the same connection
                    sale_row("b1", "rA", "77", "connB"),  # same platform id, another connection (account)
                ],
            ),
            *pack([sale_row("x1", "rA", "77", None)]),  # an Excel row whose row key happens to match
        ]
    )
    bus = RecordingBus()
    svc = Services(db=db, bus=bus, settings=settings, cfg=ConnectorSettings())
    refund = contracts.SweetClubRefundAdd(
        connection_id="connA", request_id="req1", payload={"sale_id": "77", "return_reason_id": "3"}
    )

    await apply_refund(svc, refund)

    sales = db[COLLECTIONS.sales]
    statuses = {d["_id"]: d["status"] async for d in await sales.aggregate(rows_pipeline({}))}
    assert statuses == {"a1:77": "refunded", "a2:77": "refunded", "a1:78": "sale", "b1:77": "sale", "x1:77": "sale"}
    # The chunk's own status, which the sales index and listing select by, changes with its row's.
    assert all(chunk["status"] == chunk["rows"][0]["status"] for chunk in await sales.find({}).to_list())
    marked = await sales.find_one({"_id": "a1:77"})
    assert marked is not None and marked["rows"][0]["extra"]["platform_status"] == "0"
    recomputes = {
        (m.report_id, m.source_report_id, m.rows) for m in bus.published if isinstance(m, contracts.SalesIngested)
    }
    assert recomputes == {("rA", "a1", 1), ("rB", "a2", 1)}
    assert all(m.correlation_id == refund.correlation_id for m in bus.published)

    await apply_refund(svc, refund)  # redelivered: the same rows, recomputed again, nothing else touched
    assert len(bus.published) == 4
    assert await db[COLLECTIONS.sales].count_documents({"status": "refunded"}) == 2


async def test_a_refund_of_a_sale_never_synced_changes_nothing(db: AsyncDatabase[Document], settings: Settings) -> None:
    await db[COLLECTIONS.source_reports].insert_one(
        {"_id": "a1", "report_id": "rA", "kind": "connector", "connection_id": "connA"}
    )
    await db[COLLECTIONS.sales].insert_one(single(sale_row("a1", "rA", "77", "connA")))
    bus = RecordingBus()
    svc = Services(db=db, bus=bus, settings=settings, cfg=ConnectorSettings())
    refund = contracts.SweetClubRefundAdd(
        connection_id="connA", request_id="req2", payload={"sale_id": "999", "return_reason_id": "3"}
    )

    await apply_refund(svc, refund)

    assert bus.published == []
    assert await db[COLLECTIONS.sales].count_documents({"status": "refunded"}) == 0
