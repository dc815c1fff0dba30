"""Connectors composition root: `uvicorn services.connectors.main:app --port 8003`.

Consumes SyncConnection (flags the work), SweetClub sale/refund commands and connection checks;
a scheduler in every replica polls connections on their interval and runs syncs under leases.
The platforms are `platforms/` (one folder each, listed in `platforms/__init__.py`); the sync
engine is `sync/`; command handling is `commands.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from pymongo import AsyncMongoClient

from services.connectors import commands
from services.connectors.config import ConnectorSettings
from services.connectors.sync import Scheduler, Services
from shared import contracts, topology
from shared.broker import Bus, declare_topology, make_broker
from shared.logging import configure_logging
from shared.mongo import Document, ensure_indexes, make_client
from shared.service import make_service_app
from shared.settings import Settings, get_settings


@dataclass
class Runtime:
    """What exists only once the service has started."""

    mongo: AsyncMongoClient[Document] | None = None
    svc: Services | None = None
    scheduler: Scheduler | None = None

    def services(self) -> Services:
        assert self.svc is not None, "used before start-up"
        return self.svc


def create_app(settings: Settings, cfg: ConnectorSettings | None = None) -> AsgiFastStream:
    cfg = cfg or ConnectorSettings()
    broker = make_broker(settings)
    bus = Bus(broker, settings)
    runtime = Runtime()

    @broker.subscriber(topology.rabbit_queue(settings, topology.SYNC_CONNECTION), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_sync(msg: contracts.SyncConnection) -> None:
        await commands.request_sync(runtime.services(), msg)
        if runtime.scheduler is not None:
            runtime.scheduler.kick()

    @broker.subscriber(topology.rabbit_queue(settings, topology.SWEETCLUB_COMMANDS), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_sweetclub(msg: dict[str, Any]) -> None:
        await commands.sweetclub_command(runtime.services(), msg)

    @broker.subscriber(topology.rabbit_queue(settings, topology.CHECK_CONNECTION), ack_policy=AckPolicy.NACK_ON_ERROR)
    async def on_check(msg: contracts.CheckConnection) -> None:
        await commands.check(runtime.services(), msg)

    async def start() -> None:
        runtime.mongo = make_client(settings)
        db = runtime.mongo[settings.mongo_db]
        await ensure_indexes(db)
        runtime.svc = Services(db=db, bus=bus, settings=settings, cfg=cfg)
        await broker.connect()
        await declare_topology(broker, settings)
        runtime.scheduler = Scheduler(runtime.svc)
        runtime.scheduler.start()

    async def stop() -> None:
        if runtime.scheduler is not None:
            await runtime.scheduler.stop()
        if runtime.mongo is not None:
            await runtime.mongo.close()

    return make_service_app("connectors", broker, lambda: runtime.mongo, on_startup=[start], on_shutdown=[stop])


def _app_from_env() -> AsgiFastStream:
    settings = get_settings()
    configure_logging("connectors", settings.log_level)
    return create_app(settings)


app = _app_from_env()
