"""Ingest composition root: consumes upload commands and `sale recorded` events.

Run: `uvicorn services.ingest.main:app` (serves /health, /ready, /metrics, /asyncapi).
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.rabbit import Channel
from pymongo.asynchronous.database import AsyncDatabase

from services.ingest.handlers import IngestHandlers
from services.ingest.repository import IngestRepository
from shared import contracts, topology
from shared.broker import Bus, make_broker
from shared.dlq_watch import DlqDepthWatcher
from shared.logging import configure_logging
from shared.mongo import Document
from shared.service import ServiceStartup, service_app
from shared.settings import Settings, get_settings


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings)
    bus = Bus(broker, settings)
    runtime = Runtime()

    def handlers() -> IngestHandlers:
        assert runtime.handlers is not None, "used before start-up"
        return runtime.handlers

    # Parsing a workbook takes a child process that holds the whole sheet in memory (peak RSS by
    # size in docs/benchmarks.md, "Parsing"): take at most two files at a time per replica,
    # whatever the default prefetch.
    @broker.subscriber(
        topology.rabbit_queue(settings, topology.UPLOAD_EXCEL),
        topology.bus_exchange(settings),
        channel=Channel(prefetch_count=2),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="ingest.upload-excel",
        description="Parse an uploaded workbook, validate every row, store the rows",
    )
    async def on_upload(command: contracts.UploadExcel) -> None:
        await handlers().upload_excel(command)

    @broker.subscriber(
        topology.rabbit_queue(settings, topology.SALE_RECORDED),
        topology.bus_exchange(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="ingest.sale-recorded",
        description="Sales published by other systems (public event, schema version 1)",
    )
    async def on_sale_recorded(event: contracts.SaleRecorded) -> None:
        await handlers().sale_recorded(event)

    async def build_handlers(db: AsyncDatabase[Document]) -> None:
        runtime.handlers = IngestHandlers(IngestRepository(db), bus, settings)
        # A parse worker started ahead of the first file (services/ingest/excel/stream.py).
        runtime.handlers.spare.refill()

    async def close_spare() -> None:
        if runtime.handlers is not None:
            await runtime.handlers.spare.close()

    # The DLQ watcher keeps saleswire_dlq_depth_messages fresh (any replica may; dashboards take the max).
    return service_app(
        ServiceStartup(
            "ingest",
            broker,
            settings,
            on_start=build_handlers,
            on_stop=close_spare,
            background=[DlqDepthWatcher(settings)],
        )
    )


@dataclass
class Runtime:
    """What exists only once the service has started."""

    handlers: IngestHandlers | None = None


def _app_from_env() -> AsgiFastStream:
    settings = get_settings()
    configure_logging("ingest", settings.log_level)
    return create_app(settings)


app = _app_from_env()
