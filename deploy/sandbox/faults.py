"""Switchable faults and the control endpoints every sandbox emulator shares.

Faults are chosen per request, either
- by a header on the request itself: `X-Sandbox-Fault: 429` | `500` | `slow` | `drop` | `expire_token`
  (optional `X-Sandbox-Retry-After`, `X-Sandbox-Delay`), or
- by queued rules: `POST /_sandbox/faults` `{"fault": "429", "count": 2, "path": "/api/sale/list",
  "skip": 3, "retry_after": 1, "delay": 2}` — the next `count` matching requests (after skipping
  `skip` of them) get the fault. `DELETE /_sandbox/faults` clears the rules.

Other control endpoints: `GET /_sandbox/stats` (requests per path, faults served),
`POST /_sandbox/reset` `{"size": N, "seed": S, "span_days": D}` (new deterministic data, faults cleared, tokens
valid again), `POST /_sandbox/grow` `{"count": N}` (append newer sales), `POST /_sandbox/status`
`{"id": ..., "status": ...}` (Eduzz: a sale changes state later, e.g. refunded or paid), `GET /_sandbox/truth`
(the data as the emulator holds it, for tests to compare with).
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

FaultKind = Literal["429", "500", "503", "slow", "drop", "expire_token"]
MAX_SIZE = 100_000


class FaultRule(BaseModel):
    fault: FaultKind
    count: int = Field(default=1, ge=1)
    path: str | None = None  # a prefix, or an exact path when it ends with "$"; None = every API path
    skip: int = Field(default=0, ge=0)
    retry_after: float = 1.0
    delay: float = 2.0


class ResetRequest(BaseModel):
    size: int = Field(default=1000, ge=0, le=MAX_SIZE)
    seed: int = 42
    # The sales spread evenly over this many days from 2024-01-01 (31: "a month of N sales").
    span_days: int = Field(default=365, ge=1, le=3660)


class StatusRequest(BaseModel):
    """A sale changes state on the platform after it was made (refund, cancellation, payment)."""

    id: str
    status: str


class GrowRequest(BaseModel):
    count: int = Field(default=10, ge=1, le=MAX_SIZE)


@dataclass
class FaultState:
    rules: list[FaultRule] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)

    def take(self, path: str) -> FaultRule | None:
        for rule in self.rules:
            if rule.path is not None and not (
                path == rule.path[:-1] if rule.path.endswith("$") else path.startswith(rule.path)
            ):
                continue
            if rule.skip:
                rule.skip -= 1
                continue
            rule.count -= 1
            if rule.count <= 0:
                self.rules.remove(rule)
            return rule
        return None


class FaultMiddleware:
    """ASGI middleware in front of an emulator. `on_expire` invalidates the emulator's tokens."""

    def __init__(self, app: ASGIApp, state: FaultState, on_expire: Callable[[], None]) -> None:
        self.app = app
        self.state = state
        self.on_expire = on_expire

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        self.state.requests[path] += 1
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        rule: FaultRule | None
        if "x-sandbox-fault" in headers:
            rule = FaultRule(
                fault=headers["x-sandbox-fault"],
                retry_after=float(headers.get("x-sandbox-retry-after", "1")),
                delay=float(headers.get("x-sandbox-delay", "2")),
            )
        else:
            rule = self.state.take(path)
        if rule is None:
            await self.app(scope, receive, send)
            return
        self.state.served[rule.fault] += 1
        if rule.fault == "429":
            await _answer(send, 429, {"error": "Too Many Requests"}, [(b"retry-after", _num(rule.retry_after))])
        elif rule.fault in ("500", "503"):
            await _answer(send, int(rule.fault), {"error": "Internal Server Error"})
        elif rule.fault == "slow":
            await asyncio.sleep(rule.delay)
            await self.app(scope, receive, send)
        elif rule.fault == "drop":
            # Promise a body, send part of it, then fail: the server closes the connection and the
            # client sees a connection dropped mid-answer.
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
                }
            )
            await send({"type": "http.response.body", "body": b'{"partial": ', "more_body": True})
            raise ConnectionAbortedError("sandbox fault: connection dropped")
        elif rule.fault == "expire_token":
            self.on_expire()
            await self.app(scope, receive, send)


def _num(value: float) -> bytes:
    return (str(int(value)) if float(value).is_integer() else str(value)).encode()


async def _answer(send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body, ensure_ascii=False).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


def money_json(value: Any) -> int | float:
    """A JSON number as the documents print them: 400 when whole, 19.8 otherwise."""
    as_float = float(value)
    return int(as_float) if as_float.is_integer() else round(as_float, 2)


def control_router(
    faults: FaultState,
    *,
    reset: Callable[[ResetRequest], None],
    grow: Callable[[int], int],
    truth: Callable[[], Any],
    set_status: Callable[[StatusRequest], None] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    if set_status is not None:

        @router.post("/status")
        async def change_status(request: StatusRequest) -> dict[str, str]:
            set_status(request)
            return {"id": request.id, "status": request.status}

    @router.post("/faults")
    async def add_faults(rules: FaultRule | list[FaultRule]) -> dict[str, int]:
        faults.rules.extend(rules if isinstance(rules, list) else [rules])
        return {"queued": len(faults.rules)}

    @router.delete("/faults")
    async def clear_faults() -> dict[str, int]:
        faults.rules.clear()
        return {"queued": 0}

    @router.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "requests": dict(faults.requests),
            "faults_served": dict(faults.served),
            "queued": [r.model_dump() for r in faults.rules],
        }

    @router.post("/reset")
    async def do_reset(request: ResetRequest) -> dict[str, int]:
        reset(request)
        faults.rules.clear()
        faults.requests.clear()
        faults.served.clear()
        return {"size": request.size}

    @router.post("/grow")
    async def do_grow(request: GrowRequest) -> dict[str, int]:
        return {"size": grow(request.count)}

    @router.get("/truth")
    async def get_truth() -> Any:
        return truth()

    return router
