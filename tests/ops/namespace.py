"""Removes a test's broker namespace (its queues, dead-letter queues and exchanges) from the shared
RabbitMQ, so that test runs do not leave durable quorum queues behind."""

from __future__ import annotations

import aio_pika

from shared import topology
from shared.settings import Settings


async def drop_namespace(settings: Settings) -> None:
    connection = await aio_pika.connect(settings.rabbit_url)
    try:
        channel = await connection.channel()
        for spec in topology.ALL_QUEUES:
            await channel.queue_delete(topology.queue_name(settings, spec))
            await channel.queue_delete(topology.dead_letter_queue_name(settings, spec))
        await channel.exchange_delete(topology.bus_exchange(settings).name)
        await channel.exchange_delete(topology.dead_letter_exchange(settings).name)
    finally:
        await connection.close()
