"""Per-request CPU of the gateway against a bare FastAPI app, both called in-process through ASGI:
no sockets, no HTTP parsing, no load client sharing the cores. What remains is exactly what each
app does per request (routing, dependencies, validation, middleware, and the gateway's coalesced
database reads), so the figure is far steadier than req/s over loopback on a noisy 2-core VM.

    .venv/bin/python -m bench.gateway_asgi [--scenario walk|shared] [--rounds 100] [--concurrency 50]
                                           [--repeat 5] [--profile gateway.prof]

Starts SecantusDB and the three services to upload one campaign (as bench.gateway_load does),
then builds a second gateway app (and the bare app, bench/bare_app.py) in this process on the same
database and broker. Each round sends `concurrency` requests at once. Scenario `walk` (default):
one request of each client's own walk (bench/client_walk.py: its own token and reports, so no two
alike); `shared`: half report reads, half sales listings of one campaign, one token.
`--profile` writes a cProfile of the gateway's measured runs.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import statistics
import time
from collections.abc import MutableMapping
from typing import Any

import uvloop

from bench.client_walk import CHANNEL, ClientReports, Request, walk
from bench.gateway_load import seed_walkers, seeded_stack
from shared.settings import Settings
from tests.infra import settings_env


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


def walk_requests(walker: ClientReports, plan: list[Request]) -> list[tuple[dict[str, Any], bytes]]:
    auth = {"Authorization": f"Bearer {walker.token}", "Host": "bench"}
    out = []
    for method, target, body in plan:
        path, _, query = target.partition("?")
        payload = b"" if body is None else json.dumps(body).encode()
        headers = {**auth, "Content-Type": "application/json", "Content-Length": str(len(payload))} if body else auth
        out.append((scope_of(method, path, query, headers), payload))
    return out


Batches = list[list[tuple[dict[str, Any], bytes]]]


async def measure(app: Any, batches: Batches, rounds: int) -> float:
    """CPU microseconds per request over `rounds` rounds, each sending one batch at once."""
    started = time.process_time()
    sent = 0
    for r in range(rounds):
        batch = batches[r % len(batches)]
        statuses = await asyncio.gather(*(call(app, s, b) for s, b in batch))
        sent += len(batch)
        if any(code != 200 for code in statuses):
            raise RuntimeError(f"unexpected statuses {sorted(set(statuses))}")
    return (time.process_time() - started) / sent * 1e6


async def compare(settings: Settings, batches: Batches, args: argparse.Namespace) -> None:
    os.environ.update(settings_env(settings))  # the bare app reads its database from the environment
    from bench.bare_app import app as bare
    from services.gateway.main import create_app

    gateway = create_app(settings)
    profile = cProfile.Profile() if args.profile else None
    async with gateway.router.lifespan_context(gateway), bare.router.lifespan_context(bare):
        gc.collect()
        gc.freeze()  # as services.gateway.main does once the app is built
        await asyncio.sleep(0.5)  # the token watch opens
        await measure(gateway, batches, 20)  # warm-up
        await measure(bare, batches, 20)
        g_runs, b_runs = [], []
        for _ in range(args.repeat):  # interleaved, so drifts of the machine hit both alike
            b_runs.append(await measure(bare, batches, args.rounds))
            if profile:
                profile.enable()
            g_runs.append(await measure(gateway, batches, args.rounds))
            if profile:
                profile.disable()
    if profile:
        profile.dump_stats(args.profile)
    g, b = statistics.median(g_runs), statistics.median(b_runs)
    print(f"bare FastAPI  {b:7.1f} µs CPU per request (runs: {', '.join(f'{x:.0f}' for x in b_runs)})")
    print(f"gateway       {g:7.1f} µs CPU per request (runs: {', '.join(f'{x:.0f}' for x in g_runs)})")
    print(f"ratio bare/gateway: {b / g:.2f}x (the requests/s one core gives the gateway, relative to the bare app)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", choices=("walk", "shared"), default="walk")
    parser.add_argument("--rounds", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50, help="requests at once (walk: clients)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", help="write a cProfile of the gateway's measured runs here")
    args = parser.parse_args()
    with seeded_stack(reports=1) as stack:
        report_id, source_id = stack.targets[0]
        if args.scenario == "walk":
            walkers = uvloop.run(seed_walkers(stack, args.concurrency, 3))
            per_client = [walk_requests(c, walk(c, seed=n)) for n, c in enumerate(walkers)]
            batches = [[reqs[r % len(reqs)] for reqs in per_client] for r in range(len(per_client[0]))]
        else:
            reqs = requests_for(report_id, source_id, stack.token)
            batches = [[reqs[i % len(reqs)] for i in range(args.concurrency)]]
        uvloop.run(compare(stack.settings, batches, args))


if __name__ == "__main__":
    main()
