"""The skeleton every message-driven service shares: a FastStream app served over ASGI with
`/health` (process alive), `/ready` (broker and database reachable), `/metrics` and `/asyncapi`.

Run one with `uvicorn services.<name>.main:app`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from faststream.asgi import AsgiFastStream
from faststream.rabbit import RabbitBroker
from faststream.specification import AsyncAPI
from prometheus_client import REGISTRY, CollectorRegistry, make_asgi_app
from pymongo import AsyncMongoClient

from shared.mongo import Document

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


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
    await _json(send, 200, {"status": "alive"})


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


def readiness(broker: RabbitBroker, mongo: Callable[[], AsyncMongoClient[Document] | None]) -> ASGIApp:
    async def ready(scope: Scope, receive: Receive, send: Send) -> None:
        checks = await check_dependencies(broker, mongo())
        ok = all(checks.values())
        await _json(send, 200 if ok else 503, {"ready": ok, **checks})

    return ready


def make_service_app(
    name: str,
    broker: RabbitBroker,
    mongo: Callable[[], AsyncMongoClient[Document] | None],
    *,
    on_startup: Sequence[Callable[[], Awaitable[None]]] = (),
    on_shutdown: Sequence[Callable[[], Awaitable[None]]] = (),
    registry: CollectorRegistry = REGISTRY,
) -> AsgiFastStream:
    return AsgiFastStream(
        broker,
        asgi_routes=[
            ("/health", health),
            ("/ready", readiness(broker, mongo)),
            ("/metrics", make_asgi_app(registry)),
        ],
        on_startup=list(on_startup),
        after_shutdown=list(on_shutdown),
        specification=AsyncAPI(title=f"Saleswire {name}", version="1.0.0"),
        asyncapi_path="/asyncapi",
    )
