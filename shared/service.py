"""How every Saleswire process starts, stops and answers its operators: one start-up helper for the
gateway (FastAPI) and the message-driven services (FastStream over ASGI).

Start-up, in this order: open the Mongo client → create the indexes → the service's own
`on_start(db)` (it builds its handlers on that database) → connect the broker → declare the
topology → start the background tasks (the queue-depth watcher, a scheduler...). Shut-down
stops the background tasks, runs `on_stop`, then closes the client.

Every process serves `/health` (alive), `/ready` (broker and database reachable) and `/metrics`
(what this process registered); the message-driven services add `/asyncapi`.

A message-driven service builds its broker and subscribers, then

    return service_app(ServiceStartup("ingest", broker, settings, on_start=build_handlers,
                                      background=[DlqDepthWatcher(settings)]))

and runs with `uvicorn services.<name>.main:app`. A background task that needs the database (the
connectors' scheduler) is made in `on_start` and handed over with `startup.add_background(task)`:
background tasks start after `on_start`, in the order given.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, make_asgi_app
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from shared.broker import declare_topology
from shared.mongo import Document, ensure_indexes, make_client
from shared.settings import Settings

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
OnStart = Callable[[AsyncDatabase[Document]], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


class Background(Protocol):
    """A task a process runs beside its consumers (the DLQ depth watcher, a sync scheduler):
    `start` may be a plain or an async method (the connectors' scheduler starts synchronously)."""

    def start(self) -> Awaitable[None] | None: ...

    def stop(self) -> Awaitable[None] | None: ...


class ServiceStartup:
    """Start-up and shut-down of one process (see the module's docstring for the order).

    `connect_attempts`: how many times to try the broker, a second apart, before giving up (the
    gateway waits for a broker that starts after it; the consumers fail at once and are restarted)."""

    def __init__(
        self,
        name: str,
        broker: RabbitBroker,
        settings: Settings,
        *,
        on_start: OnStart | None = None,
        on_stop: Hook | None = None,
        background: Sequence[Background] = (),
        connect_attempts: int = 1,
    ) -> None:
        self.name = name
        self.broker = broker
        self.settings = settings
        self.on_start = on_start
        self.on_stop = on_stop
        self.background = list(background)
        self.connect_attempts = connect_attempts
        self.mongo: AsyncMongoClient[Document] | None = None

    def add_background(self, task: Background) -> None:
        """Adds a task to start with the others (call it before or from `on_start`)."""
        self.background.append(task)

    @property
    def db(self) -> AsyncDatabase[Document]:
        assert self.mongo is not None, "used before start-up"
        return self.mongo[self.settings.mongo_db]

    async def start(self) -> None:
        self.mongo = make_client(self.settings)
        await ensure_indexes(self.db)
        if self.on_start is not None:
            await self.on_start(self.db)
        await self._connect_broker()
        for task in self.background:
            await _maybe_await(task.start())

    async def stop(self) -> None:
        for task in reversed(self.background):
            await _maybe_await(task.stop())
        if self.on_stop is not None:
            await self.on_stop()
        if self.mongo is not None:
            await self.mongo.close()

    async def _connect_broker(self) -> None:
        for attempt in range(1, self.connect_attempts + 1):
            try:
                await self.broker.connect()
                await declare_topology(self.broker, self.settings)
                return
            except Exception as exc:
                if self.connect_attempts == 1:
                    raise
                log.warning("broker not reachable (attempt %d): %r", attempt, exc)
                await asyncio.sleep(1)
        raise RuntimeError("the message broker is not reachable")

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Start, serve, then stop the broker and everything else (a FastAPI lifespan's body)."""
        await self.start()
        try:
            yield
        finally:
            await self.broker.stop()
            await self.stop()


async def _maybe_await(result: Awaitable[None] | None) -> None:
    if result is not None:
        await result


# --- health, readiness, metrics ------------------------------------------------------------------


async def check_dependencies(broker: RabbitBroker, mongo: AsyncMongoClient[Document] | None) -> dict[str, bool]:
    """Is the broker connection up and does the database answer a ping, each within a second?"""
    broker_ok = False
    try:
        broker_ok = await asyncio.wait_for(broker.ping(timeout=1.0), 1.5)
    except Exception:
        broker_ok = False
    db_ok = False
    if mongo is None:
        return {"broker": broker_ok, "database": False}
    try:
        await asyncio.wait_for(mongo.admin.command("ping"), 1.5)
        db_ok = True
    except Exception:
        db_ok = False
    return {"broker": broker_ok, "database": db_ok}


HEALTH: Final = {"status": "alive"}


async def readiness(broker: RabbitBroker, mongo: AsyncMongoClient[Document] | None) -> tuple[int, dict[str, bool]]:
    """The `/ready` answer: its HTTP status and body."""
    checks = await check_dependencies(broker, mongo)
    ok = all(checks.values())
    return (200 if ok else 503), {"ready": ok, **checks}


async def _json(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def health(scope: Scope, receive: Receive, send: Send) -> None:
    await _json(send, 200, dict(HEALTH))


def ops_routes(
    broker: RabbitBroker, mongo: Callable[[], AsyncMongoClient[Document] | None], registry: CollectorRegistry = REGISTRY
) -> list[tuple[str, ASGIApp]]:
    """`/health`, `/ready` and `/metrics` as plain ASGI routes (for a FastStream app)."""

    async def ready(scope: Scope, receive: Receive, send: Send) -> None:
        status, body = await readiness(broker, mongo())
        await _json(send, status, dict(body))

    return [("/health", health), ("/ready", ready), ("/metrics", make_asgi_app(registry))]


def ops_router(startup: Callable[[Request], ServiceStartup], registry: CollectorRegistry = REGISTRY) -> APIRouter:
    """`/health`, `/ready` and `/metrics` as FastAPI routes (documented in the gateway's OpenAPI);
    `startup` finds the running process's `ServiceStartup` from the request."""
    router = APIRouter(tags=["ops"])

    @router.get("/health", summary="The process is alive")
    async def health_route() -> dict[str, str]:
        return dict(HEALTH)

    @router.get("/ready", summary="Broker and database are reachable")
    async def ready_route(request: Request) -> JSONResponse:
        running = startup(request)
        status, body = await readiness(running.broker, running.mongo)
        return JSONResponse(body, status_code=status)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics_route() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return router


def service_app(startup: ServiceStartup, *, registry: CollectorRegistry = REGISTRY) -> AsgiFastStream:
    """A message-driven service: its broker's subscribers, the ops routes and `/asyncapi`."""
    return _asgi_app(startup.name, startup.broker, lambda: startup.mongo, [startup.start], [startup.stop], registry)


def _asgi_app(
    name: str,
    broker: RabbitBroker,
    mongo: Callable[[], AsyncMongoClient[Document] | None],
    on_startup: Sequence[Hook],
    after_shutdown: Sequence[Hook],
    registry: CollectorRegistry,
) -> AsgiFastStream:
    return AsgiFastStream(
        broker,
        asgi_routes=ops_routes(broker, mongo, registry),
        on_startup=list(on_startup),
        after_shutdown=list(after_shutdown),
        specification=AsyncAPI(title=f"Saleswire {name}", version="1.0.0"),
        asyncapi_path="/asyncapi",
    )
