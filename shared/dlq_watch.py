"""The queue-depth watcher a service runs in the background: it keeps
`saleswire_dlq_depth_messages` fresh from a passive declare of every dead-letter queue.

The gauge is declared here, not in `shared.metrics`, so that only the processes that run a
watcher register it (the gateway runs none and does not expose it).
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress

import aio_pika
from prometheus_client import Gauge

from shared.deadletters import dlq_depths
from shared.settings import Settings

log = logging.getLogger(__name__)

DLQ_DEPTH = Gauge("saleswire_dlq_depth_messages", "Messages waiting in a dead-letter queue", ["queue"])


async def update_dlq_depth_gauge(settings: Settings) -> dict[str, int]:
    """Set `saleswire_dlq_depth_messages{queue=<DLQ name>}` from the broker; returns the depths."""
    depths = await dlq_depths(settings)
    for name, depth in depths.items():
        DLQ_DEPTH.labels(queue=name).set(depth)
    return depths


async def watch_dlq_depths(settings: Settings, interval_seconds: float = 15.0) -> None:
    """Refresh the DLQ depth gauge forever (run it as a background task; cancel it to stop).
    A broker outage only skips a round: the gauge keeps its last value until the next success."""
    while True:
        try:
            await update_dlq_depth_gauge(settings)
        except (OSError, aio_pika.exceptions.AMQPError, TimeoutError) as exc:
            log.warning("could not read dead-letter queue depths: %r", exc)
        await asyncio.sleep(interval_seconds)


class DlqDepthWatcher:
    """Keeps the DLQ depth gauge fresh from a service: pass `start` to the app's startup hooks and
    `stop` to its shutdown hooks. Every replica may run one (dashboards take `max by (queue)`)."""

    def __init__(self, settings: Settings, interval_seconds: float = 15.0) -> None:
        self.settings = settings
        self.interval_seconds = interval_seconds
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(watch_dlq_depths(self.settings, self.interval_seconds))

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task
