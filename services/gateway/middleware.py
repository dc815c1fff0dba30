"""ASGI middleware: a correlation id per request (taken from `X-Correlation-ID` or made up, bound
for logs and messages, echoed back) and the HTTP request metrics by route template."""

from __future__ import annotations

import itertools
import re
import secrets
import time
from collections.abc import MutableMapping
from typing import Any

from prometheus_client.metrics import Counter, Histogram

from services.gateway.telemetry import HTTP_LATENCY, HTTP_REQUESTS
from shared.logging import correlation_id
from shared.service import ASGIApp, Receive, Scope, Send

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
# A made-up correlation id is this process's random prefix and a counter (32 hex digits, as a
# uuid4's hex was): unique across replicas and restarts without a system call per request.
_ID_PREFIX = secrets.token_hex(8)
_ID_COUNTER = itertools.count()
# The series of each (method, route template, status): `labels()` validates and looks its children
# up under a lock on every call, several times what counting costs. Bounded: templates, not paths.
_SERIES: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}


def _series(method: str, template: str, code: str) -> tuple[Counter, Histogram]:
    key = (method, template, code)
    found = _SERIES.get(key)
    if found is None:
        found = _SERIES[key] = (
            HTTP_REQUESTS.labels(method=method, route=template, code=code),
            HTTP_LATENCY.labels(method=method, route=template),
        )
    return found


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-correlation-id", b"").decode("latin-1")
        cid = incoming if _SAFE_ID.match(incoming) else f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"
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
            requests, latency = _series(method, template, str(code))
            requests.inc()
            latency.observe(time.perf_counter() - started)
            correlation_id.reset(token)
