"""Per-request CPU of the gateway against a bare FastAPI app, both called in-process through ASGI:
no sockets, no HTTP parsing, no load client sharing the cores. What remains is exactly what each
app does per request (routing, dependencies, validation, middleware, and the gateway's coalesced
database reads), so the figure is far steadier than req/s over loopback on a noisy 2-core VM.

    .venv/bin/python -m bench.gateway_asgi [--rounds 400] [--concurrency 50] [--repeat 5]

Starts SecantusDB and the three services to upload one campaign (as bench.gateway_load does),
then builds a second gateway app in this process on the same database and broker. Each round sends
`concurrency` requests at once (half report reads, half sales listings), like 50 polling clients.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import time
from collections.abc import MutableMapping
from typing import Any

import uvloop

from bench.gateway_load import CHANNEL, seeded_stack
from shared.settings import Settings


def scope_of(method: str, path: str, query: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def call(app: Any, scope: dict[str, Any], body: bytes) -> int:
    sent = False
    status = 0

    async def receive() -> MutableMapping[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # a client that stays connected
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])

    await app(dict(scope), receive, send)
    return status


def requests_for(report_id: str, source_id: str, token: str) -> list[tuple[dict[str, Any], bytes]]:
    auth = {"Authorization": f"Bearer {token}", "Host": "bench"}
    body = json.dumps({"report_id": report_id}).encode()
    report = scope_of("POST", "/sales/analytic/report", "", {**auth, "Content-Type": "application/json",
                                                              "Content-Length": str(len(body))})  # fmt: skip
    listing = scope_of("GET", f"/sales/analytic/{CHANNEL}/{source_id}/sales", "status=sale", auth)
    return [(report, body), (listing, b"")]


async def measure(app: Any, reqs: list[tuple[dict[str, Any], bytes]], rounds: int, concurrency: int) -> float:
    """CPU microseconds per request over `rounds` rounds of `concurrency` concurrent requests."""
    batch = [reqs[i % len(reqs)] for i in range(concurrency)]
    started = time.process_time()
    for _ in range(rounds):
        statuses = await asyncio.gather(*(call(app, s, b) for s, b in batch))
        if any(code != 200 for code in statuses):
            raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")
    return (time.process_time() - started) / (rounds * concurrency) * 1e6


async def compare(settings: Settings, reqs: list[tuple[dict[str, Any], bytes]], args: argparse.Namespace) -> None:
    from bench.bare_app import app as bare
    from services.gateway.main import create_app

    gateway = create_app(settings)
    async with gateway.router.lifespan_context(gateway):
        gc.collect()
        gc.freeze()  # as services.gateway.main does once the app is built
        await measure(gateway, reqs, 20, args.concurrency)  # warm-up
        await measure(bare, reqs, 20, args.concurrency)
        g_runs, b_runs = [], []
        for _ in range(args.repeat):  # interleaved, so drifts of the machine hit both alike
            b_runs.append(await measure(bare, reqs, args.rounds, args.concurrency))
            g_runs.append(await measure(gateway, reqs, args.rounds, args.concurrency))
    g, b = statistics.median(g_runs), statistics.median(b_runs)
    print(f"bare FastAPI  {b:7.1f} µs CPU per request (runs: {', '.join(f'{x:.0f}' for x in b_runs)})")
    print(f"gateway       {g:7.1f} µs CPU per request (runs: {', '.join(f'{x:.0f}' for x in g_runs)})")
    print(f"ratio bare/gateway: {b / g:.2f}x (the requests/s one core gives the gateway, relative to the bare app)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with seeded_stack(reports=1) as stack:
        report_id, source_id = stack.targets[0]
        uvloop.run(compare(stack.settings, requests_for(report_id, source_id, stack.token), args))


if __name__ == "__main__":
    main()
