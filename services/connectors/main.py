"""Connectors service: `uvicorn services.connectors.main:app --port 8003`.

Consumes SyncConnection (flags the work), SweetClub sale/refund commands and connection checks;
a scheduler in every replica polls connections on their interval and runs syncs under leases.
"""

from __future__ import annotations

from typing import Any

from faststream import AckPolicy

from services.connectors import commands
from services.connectors.config import ConnectorSettings
from services.connectors.sync import Scheduler, Services
from shared import contracts, topology
from shared.broker import Bus, declare_topology, make_broker
from shared.logging import configure_logging
from shared.mongo import ensure_indexes, make_client
from shared.service import make_service_app
from shared.settings import get_settings

settings = get_settings()
cfg = ConnectorSettings()
configure_logging("connectors", settings.log_level)
broker = make_broker(settings)
mongo = make_client(settings)
svc = Services(db=mongo[settings.mongo_db], bus=Bus(broker, settings), settings=settings, cfg=cfg)
scheduler = Scheduler(svc)


@broker.subscriber(topology.rabbit_queue(settings, topology.SYNC_CONNECTION), ack_policy=AckPolicy.NACK_ON_ERROR)
async def on_sync(msg: contracts.SyncConnection) -> None:
    await commands.request_sync(svc, msg)
    scheduler.kick()


@broker.subscriber(topology.rabbit_queue(settings, topology.SWEETCLUB_COMMANDS), ack_policy=AckPolicy.NACK_ON_ERROR)
async def on_sweetclub(msg: dict[str, Any]) -> None:
    await commands.sweetclub_command(svc, msg)


@broker.subscriber(topology.rabbit_queue(settings, topology.CHECK_CONNECTION), ack_policy=AckPolicy.NACK_ON_ERROR)
async def on_check(msg: contracts.CheckConnection) -> None:
    await commands.check(svc, msg)


async def startup() -> None:
    await ensure_indexes(svc.db)
    await broker.connect()
    await declare_topology(broker, settings)
    scheduler.start()


async def shutdown() -> None:
    await scheduler.stop()
    await mongo.close()


app = make_service_app("connectors", broker, lambda: mongo, on_startup=[startup], on_shutdown=[shutdown])
