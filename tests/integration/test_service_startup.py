"""The start-up helper every process uses (`shared.service.ServiceStartup`), on the real broker and
SecantusDB: the order of its steps, what is ready when the service's own hook runs, readiness
while it runs, and the order of shut-down."""

from __future__ import annotations

from collections.abc import Awaitable

import httpx
from prometheus_client import CollectorRegistry
from pymongo.asynchronous.database import AsyncDatabase

from shared import topology
from shared.broker import make_broker
from shared.mongo import Document
from shared.service import ServiceStartup, readiness, service_app
from shared.settings import Settings


class Recorder:
    """A background task (one async, one plain start) that notes when it is called."""

    def __init__(self, name: str, steps: list[str], plain: bool = False) -> None:
        self.name, self.steps, self.plain = name, steps, plain

    def start(self) -> Awaitable[None] | None:
        self.steps.append(f"start {self.name}")
        return None if self.plain else self._nothing()

    async def stop(self) -> None:
        self.steps.append(f"stop {self.name}")

    async def _nothing(self) -> None:
        return None


async def test_start_runs_every_step_in_order_and_stop_reverses_it(settings: Settings) -> None:
    steps: list[str] = []
    broker = make_broker(settings, registry=CollectorRegistry())
    startup: ServiceStartup

    async def on_start(db: AsyncDatabase[Document]) -> None:
        # The indexes exist and the broker is not connected yet: handlers are built first.
        indexes = await db["sales"].index_information()
        steps.append(f"on_start indexes={len(indexes) > 1} broker={await broker.ping(timeout=0.5)}")
        # A task made from the database joins the others, after them (the connectors' scheduler).
        startup.add_background(Recorder("scheduler", steps, plain=True))

    async def on_stop() -> None:
        steps.append(f"on_stop mongo_open={startup.mongo is not None}")

    startup = ServiceStartup(
        "probe",
        broker,
        settings,
        on_start=on_start,
        on_stop=on_stop,
        background=[Recorder("watcher", steps)],
    )
    await startup.start()
    try:
        assert steps == ["on_start indexes=True broker=False", "start watcher", "start scheduler"]
        # The topology is declared: every queue of the namespace exists.
        for spec in topology.ALL_QUEUES:
            await broker.declare_queue(topology.rabbit_queue(settings, spec))
        assert await readiness(broker, startup.mongo) == (200, {"ready": True, "broker": True, "database": True})
    finally:
        await broker.stop()
        await startup.stop()
    assert steps[3:] == ["stop scheduler", "stop watcher", "on_stop mongo_open=True"]


async def test_a_service_app_answers_health_ready_and_metrics_before_start_up(settings: Settings) -> None:
    registry = CollectorRegistry()
    startup = ServiceStartup("probe", make_broker(settings, registry=registry), settings)
    app = service_app(startup, registry=registry)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://probe") as client:
        assert (await client.get("/health")).json() == {"status": "alive"}
        ready = await client.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"ready": False, "broker": False, "database": False}
        assert (await client.get("/metrics")).status_code == 200
