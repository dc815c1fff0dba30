"""ASGI middleware: a correlation id per request (taken from `X-Correlation-ID` or made up, bound
for logs and messages, echoed back) and the HTTP request metrics by route template."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import MutableMapping
from typing import Any

from services.gateway.telemetry import HTTP_LATENCY, HTTP_REQUESTS
from shared.logging import correlation_id
from shared.service import ASGIApp, Receive, Scope, Send

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-correlation-id", b"").decode("latin-1")
        cid = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
        token = correlation_id.set(cid)
        started = time.perf_counter()
        code = 500

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-correlation-id", cid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = scope.get("route")
            # The route template, never the raw path: ids in paths would make unbounded labels.
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            HTTP_REQUESTS.labels(method=method, route=template, code=str(code)).inc()
            HTTP_LATENCY.labels(method=method, route=template).observe(time.perf_counter() - started)
            correlation_id.reset(token)
