"""Switchable faults and the control endpoints every sandbox emulator shares.

Faults are chosen per request, either
- by a header on the request itself: `X-Sandbox-Fault: 429` | `500` | `503` | `slow` | `drop` |
  `expire_token` | `commit_drop` | `commit_timeout` | `commit_500` (optional `X-Sandbox-Retry-After`,
  `X-Sandbox-Delay`), or
- by queued rules: `POST /_sandbox/faults` `{"fault": "429", "count": 2, "path": "/api/sale/list",
  "method": "GET", "skip": 3, "retry_after": 1, "delay": 2}` — the next `count` matching requests
  (after skipping `skip` of them) get the fault. `DELETE /_sandbox/faults` clears the rules.

The plain faults fire before the handler: the request has no effect. The `commit_*` faults run the
handler first — a write takes effect — and then lose its answer: `commit_drop` drops the connection
mid-answer, `commit_timeout` holds the answer `delay` seconds and then drops it (set `delay` above
the client's timeout), `commit_500` answers 500 instead. That is what a client sees when a platform
commits a write and the network or a proxy in front of it loses the reply.

Other control endpoints: `GET /_sandbox/stats` (`requests` per raw path, `calls` per "METHOD
/route" with numeric path segments as `{id}`, `answers` per route and HTTP status, faults served),
`DELETE /_sandbox/stats` (counters back to zero, data untouched),
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

FaultKind = Literal["429", "500", "503", "slow", "drop", "expire_token", "commit_drop", "commit_timeout", "commit_500"]
COMMIT_FAULTS = frozenset({"commit_drop", "commit_timeout", "commit_500"})
MAX_SIZE = 100_000


class FaultRule(BaseModel):
    fault: FaultKind
    count: int = Field(default=1, ge=1)
    path: str | None = None  # a prefix, or an exact path when it ends with "$"; None = every API path
    method: str | None = None  # GET, POST...; None = any
    skip: int = Field(default=0, ge=0)
    retry_after: float = 1.0
    delay: float = 2.0


class ResetRequest(BaseModel):
    size: int = Field(default=1000, ge=0, le=MAX_SIZE)
    seed: int = 42
    # The sales spread evenly over this many days from 2024-01-01 (31: "a month of N sales").
    span_days: int = Field(default=365, ge=1, le=3660)
    # The share of refunded sales (SweetClub status "0", Eduzz "refunded", OFD income_return
    # receipts); None keeps each emulator's own mix.
    refund_share: float | None = Field(default=None, ge=0, le=1)


class ChangeRequest(BaseModel):
    """Change `count` existing sales the way a platform changes them later, deterministically from
    `seed`: `field` "status" refunds sales that count (SweetClub "1" → "0", Eduzz paid → refunded;
    OFD adds a return receipt to `count` distinct days), "total" raises their amount by 1.
    `since` (YYYY-MM-DD) picks only among sales made on or after that day; `ids` names them."""

    count: int = Field(default=100, ge=0, le=MAX_SIZE)
    field: Literal["status", "total"] = "status"
    seed: int = 0
    since: str | None = None
    ids: list[str] | None = None


class StatusRequest(BaseModel):
    """A sale changes state on the platform after it was made (refund, cancellation, payment)."""

    id: str
    status: str


class GrowRequest(BaseModel):
    count: int = Field(default=10, ge=1, le=MAX_SIZE)


def route_of(method: str, path: str) -> str:
    """`GET /orbita/v1/sales/100001` → `GET /orbita/v1/sales/{id}`: one counter per route, not per sale."""
    return f"{method} " + "/".join("{id}" if part.isdigit() else part for part in path.split("/"))


@dataclass
class FaultState:
    rules: list[FaultRule] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    served: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)

    def clear_counters(self) -> None:
        self.requests.clear()
        self.served.clear()
        self.calls.clear()
        self.answers.clear()

    def stats(self) -> dict[str, Any]:
        answers: dict[str, dict[str, int]] = {}
        for (route, status), n in sorted(self.answers.items()):
            answers.setdefault(route, {})[str(status)] = n
        return {
            "requests": dict(self.requests),
            "calls": dict(self.calls),
            "answers": answers,
            "faults_served": dict(self.served),
            "queued": [r.model_dump() for r in self.rules],
        }

    def take(self, path: str, method: str = "GET") -> FaultRule | None:
        for rule in self.rules:
            if rule.path is not None and not (
                path == rule.path[:-1] if rule.path.endswith("$") else path.startswith(rule.path)
            ):
                continue
            if rule.method is not None and rule.method.upper() != method:
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
        method: str = scope.get("method", "GET")
        route = route_of(method, path)
        self.state.requests[path] += 1
        self.state.calls[route] += 1

        async def counted(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.state.answers[(route, int(message["status"]))] += 1
            await send(message)

        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        rule: FaultRule | None
        if "x-sandbox-fault" in headers:
            rule = FaultRule(
                fault=headers["x-sandbox-fault"],
                retry_after=float(headers.get("x-sandbox-retry-after", "1")),
                delay=float(headers.get("x-sandbox-delay", "2")),
            )
        else:
            rule = self.state.take(path, method)
        if rule is None:
            await self.app(scope, receive, counted)
            return
        self.state.served[rule.fault] += 1
        await self.serve_fault(rule, scope, receive, counted)

    async def serve_fault(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        if rule.fault in COMMIT_FAULTS:
            await self.commit_then_lose(rule, scope, receive, send)
            return
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

    async def commit_then_lose(self, rule: FaultRule, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the handler to the end (its write happens), keep its answer, and lose it."""
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        if rule.fault == "commit_500":
            await _answer(send, 500, {"error": "Internal Server Error"})
            return
        if rule.fault == "commit_timeout":
            await asyncio.sleep(rule.delay)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        await send(
            {
                "type": "http.response.start",
                "status": start["status"] if start else 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        # Half the real answer, then the connection goes: the client cannot tell what happened.
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionAbortedError("sandbox fault: committed, then the connection dropped")


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
    change: Callable[[ChangeRequest], list[str]] | None = None,
) -> APIRouter:
    router = APIRouter(prefix="/_sandbox", tags=["sandbox control"])

    if change is not None:

        @router.post("/change")
        async def change_sales(request: ChangeRequest) -> dict[str, Any]:
            ids = change(request)
            return {"changed": len(ids), "ids": ids}

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
        return faults.stats()

    @router.delete("/stats")
    async def clear_stats() -> dict[str, Any]:
        faults.clear_counters()
        return faults.stats()

    @router.post("/reset")
    async def do_reset(request: ResetRequest) -> dict[str, int]:
        reset(request)
        faults.rules.clear()
        faults.clear_counters()
        return {"size": request.size}

    @router.post("/grow")
    async def do_grow(request: GrowRequest) -> dict[str, int]:
        return {"size": grow(request.count)}

    @router.get("/truth")
    async def get_truth() -> Any:
        return truth()

    return router
