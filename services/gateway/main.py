"""Gateway composition root: settings, database, broker and routes wired into one FastAPI app.

Run: `uvicorn services.gateway.main:app` (settings from SALESWIRE_* environment variables).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

import services.gateway.web as web_page
from services.gateway.coalesce import ReadCoalescer, ReadCoalescingMiddleware
from services.gateway.middleware import RequestContextMiddleware
from services.gateway.routes import connections, exports, report_inputs, sales
from services.gateway.token_cache import VerifiedTokens
from shared.broker import Bus, make_broker
from shared.logging import configure_logging
from shared.mongo import Document
from shared.service import ServiceStartup, ops_router
from shared.settings import Settings, get_settings

log = logging.getLogger(__name__)

DESCRIPTION = """Saleswire public API: upload a campaign's Excel export, read ROMI, CAC, CPL and
conversion reports. Every endpoint needs `Authorization: Bearer <token>`
(tokens: `python -m services.gateway.tokens create NAME`)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        broker = make_broker(settings)

        async def keep_handles(db: AsyncDatabase[Document]) -> None:
            app.state.mongo = startup.mongo
            app.state.db = db

        # The gateway waits for a broker that starts after it (up to 30 s) instead of failing.
        startup = ServiceStartup("gateway", broker, settings, on_start=keep_handles, connect_attempts=30)
        app.state.startup = startup
        app.state.settings = settings
        app.state.broker = broker
        app.state.bus = Bus(broker, settings)
        async with startup.running():
            # Verified tokens are cached only while this change stream is open (token_cache.py).
            watching = asyncio.create_task(tokens.watch(startup.db), name="token-watch")
            try:
                yield
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching

    app = FastAPI(title="Saleswire", version="1.0.0", description=DESCRIPTION, lifespan=lifespan)
    reads = ReadCoalescer()
    app.state.reads = reads
    tokens = VerifiedTokens()
    app.state.tokens = tokens
    app.add_middleware(ReadCoalescingMiddleware, reads=reads)
    app.add_middleware(RequestContextMiddleware)

    @app.exception_handler(PyMongoError)
    async def database_unavailable(request: Request, exc: PyMongoError) -> JSONResponse:
        log.error("database error: %r", exc)
        return JSONResponse({"detail": "the database is unavailable, please retry"}, status_code=503)

    app.include_router(sales.router)
    app.include_router(report_inputs.router)
    app.include_router(exports.router)
    app.include_router(connections.router)
    app.include_router(ops_router(lambda request: request.app.state.startup))
    web_page.mount(app)

    return app


def _app_from_env() -> FastAPI:
    settings = get_settings()
    configure_logging("gateway", settings.log_level)
    app = create_app(settings)
    # Everything loaded so far (modules, routes, schemas) lives as long as the process: moved out
    # of the collector's sight, a full collection no longer walks it in the middle of requests,
    # which was the p99 tail under bench.gateway_load (docs/benchmarks.md, "Gateway load").
    gc.collect()
    gc.freeze()
    return app


app = _app_from_env()
