"""Analytics composition root: consumes `sales ingested` events and `recompute report` commands,
maintains report documents and their links tables.

Run: `uvicorn services.analytics.main:app` (serves /health, /ready, /metrics, /asyncapi).
"""

from __future__ import annotations

from dataclasses import dataclass

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.handlers import AnalyticsHandlers
from services.analytics.repository import AnalyticsRepository
from shared import contracts, topology
from shared.broker import Bus, make_broker
from shared.dlq_watch import DlqDepthWatcher
from shared.logging import configure_logging
from shared.mongo import Document
from shared.service import ServiceStartup, service_app
from shared.settings import Settings, get_settings


@dataclass
class Runtime:
    """What exists only once the service has started."""

    handlers: AnalyticsHandlers | None = None


def create_app(settings: Settings) -> AsgiFastStream:
    broker = make_broker(settings)
    bus = Bus(broker, settings)
    runtime = Runtime()

    @broker.subscriber(
        topology.rabbit_queue(settings, topology.SALES_INGESTED),
        topology.bus_exchange(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="analytics.sales-ingested",
        description="Recompute the metrics of a report whose rows changed",
    )
    async def on_sales_ingested(event: contracts.SalesIngested) -> None:
        assert runtime.handlers is not None, "used before start-up"
        await runtime.handlers.sales_ingested(event)

    @broker.subscriber(
        topology.rabbit_queue(settings, topology.RECOMPUTE_REPORT),
        topology.bus_exchange(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="analytics.recompute-report",
        description="Recompute a report whose exchange rates or link costs changed, from its stored totals",
    )
    async def on_recompute_report(command: contracts.RecomputeReport) -> None:
        assert runtime.handlers is not None, "used before start-up"
        await runtime.handlers.recompute_report(command)

    async def build_handlers(db: AsyncDatabase[Document]) -> None:
        runtime.handlers = AnalyticsHandlers(
            AnalyticsRepository(db, settings.analytics_totals),
            bus,
            progress_interval_seconds=settings.progress_recompute_seconds,
            default_currency=settings.report_currency,
        )

    # The DLQ watcher keeps saleswire_dlq_depth_messages fresh (any replica may; dashboards take the max).
    return service_app(
        ServiceStartup("analytics", broker, settings, on_start=build_handlers, background=[DlqDepthWatcher(settings)])
    )


def _app_from_env() -> AsgiFastStream:
    settings = get_settings()
    configure_logging("analytics", settings.log_level)
    return create_app(settings)


app = _app_from_env()
