"""Gateway read load against a bare FastAPI app, same machine, same run.

    .venv/bin/python -m bench.gateway_load --clients 50 --seconds 10 [--rounds 3] [--reports 25]

Starts SecantusDB, gateway + ingest + analytics (uvicorn processes) on the local RabbitMQ, uploads
one campaign, then drives `POST /sales/analytic/report` and the sales listing with N concurrent
keep-alive clients (bench/loadgen.py, a lean client) for a fixed time, and the same against
`bench/bare_app.py`, alternating for --rounds rounds each. Prints the median requests/s, p50 and
p99 latency of each, the CPU each process spent, and the ratios.

Two kinds of rounds, both printed:
- closed loop (the throughput ratio): each client sends its next request as soon as the last is
  answered, so each app runs at its capacity; latency there is clients / throughput (Little's law),
  a queue the load client makes, not a property of the app.
- open loop (`--open-load`, the latency figure): Poisson arrivals at a fixed offered rate, a
  fraction of the bare app's closed-loop capacity measured just before in the same run (printed),
  the same walks; p50/p99 counted from each arrival, for both apps at the same rate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.client_walk import CHANNEL, ClientReports, Request, encoded, seed_clients, walk
from bench.loadgen import LoadResult, encode_request, run_open_walks, run_walks
from shared.mongo import make_client
from shared.settings import Settings
from tests.infra import (
    MongoServer,
    ServiceProcess,
    delete_namespace,
    ensure_rabbitmq,
    free_port,
    rabbit_url,
    settings_env,
)
from tests.workbooks import CAMPAIGN_ROWS, RU_HEADERS, workbook_bytes


def shared_requests(base: str, headers: dict[str, str], targets: list[tuple[str, str]]) -> list[bytes]:
    """The shared scenario: half report reads, half sales listings of the (report id, source
    report id) pairs, one token for every client."""
    requests = []
    for report_id, source_id in targets:
        requests.append(encode_request("POST", f"{base}/sales/analytic/report", headers, {"report_id": report_id}))
        requests.append(
            encode_request("GET", f"{base}/sales/analytic/{CHANNEL}/{source_id}/sales?status=sale", headers)
        )
    return requests


def drive(base: str, walks: list[list[bytes]], starts: list[int], seconds: float) -> dict[str, float]:
    return summary(run_walks(base, walks, seconds, starts))


def summary(r: LoadResult) -> dict[str, float]:
    return {
        "requests": r.requests,
        "rps": r.rps,
        "p50_ms": r.p50_ms,
        "p99_ms": r.percentile_ms(0.99),
        "errors": r.errors,
    }


def coalesced(base: str) -> dict[str, float]:
    """The gateway's counters of shared work: whole requests, and reads inside the remaining runs."""
    found = {"requests": 0.0, "reads": 0.0}
    for line in httpx.get(f"{base}/metrics").text.splitlines():
        for kind in found:
            if line.startswith(f"saleswire_gateway_{kind}_coalesced_total "):
                found[kind] = float(line.split()[1])
    return found


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (from /proc, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class SeededStack:
    settings: Settings
    mongo: MongoServer
    gateway: ServiceProcess
    token: str
    targets: list[tuple[str, str]]  # (report id, source report id) of each uploaded campaign
    logs: Path


@contextmanager
def seeded_stack(reports: int) -> Iterator[SeededStack]:
    """SecantusDB and the three services on the local RabbitMQ under a throw-away namespace, a
    token, and `reports` campaigns uploaded and analysed; torn down on exit."""
    ensure_rabbitmq()
    mongo = MongoServer()
    mongo.start()
    tag = uuid.uuid4().hex[:8]
    settings = Settings(mongo_url=mongo.url, mongo_db=f"bench_{tag}", rabbit_url=rabbit_url(), namespace=f"bench.{tag}")
    env = settings_env(settings)
    logs = Path(tempfile.mkdtemp(prefix="saleswire-bench-"))
    procs = [
        ServiceProcess(name, f"services.{name}.main:app", free_port(), env, logs)
        for name in ("gateway", "ingest", "analytics")
    ]
    try:
        for p in procs:
            p.start()
        for p in procs:
            p.wait_ready()
        created_token = subprocess.run(
            [sys.executable, "-m", "services.gateway.tokens", "create", "bench"],
            env={**env}, capture_output=True, text=True, check=True,
        )  # fmt: skip
        token = created_token.stdout.strip().splitlines()[-1]
        headers = {"Authorization": f"Bearer {token}"}
        gw = procs[0].url
        targets = []
        for n in range(reports):
            created = httpx.post(
                f"{gw}/sales/create",
                params={"channel_id": CHANNEL, "name": f"b{n}", "budget": 1000},
                files={"file": ("c.xlsx", workbook_bytes(RU_HEADERS, CAMPAIGN_ROWS))},
                headers=headers,
                timeout=60,
            ).json()
            while (
                report := httpx.post(
                    f"{gw}/sales/analytic/report", json={"report_id": created["report_id"]}, headers=headers
                ).json()
            )["status"] != "success":
                time.sleep(0.2)
            targets.append((report["id"], report["source_reports"][0]["id"]))
        yield SeededStack(settings, mongo, procs[0], token, targets, logs)
    finally:
        for p in procs:
            p.stop()
        delete_namespace(settings.rabbit_url, settings.namespace)
        mongo.remove()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument(
        "--scenario",
        choices=("walk", "shared"),
        default="walk",
        help="walk: every client its own user, token and reports, no two requests in flight identical "
        "(bench/client_walk.py; the issue-19 target); shared: one token, clients spread over --reports campaigns",
    )
    parser.add_argument(
        "--reports",
        type=int,
        default=1,
        help="shared: campaigns the clients read (1: all ask for the same one); walk: reports per client (default 3)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per app, alternating")
    parser.add_argument(
        "--open-load",
        type=float,
        default=0.5,
        help="open-loop rounds at this fraction of the bare app's closed-loop median req/s (0: none)",
    )
    parser.add_argument("--open-seconds", type=float, default=20, help="length of each open-loop round")
    args = parser.parse_args()
    with seeded_stack(1 if args.scenario == "walk" else args.reports) as stack:
        if args.scenario == "walk":
            per_client = args.reports if args.reports > 1 else 3
            walkers = asyncio.run(seed_walkers(stack, args.clients, per_client))
            plans = [walk(c, seed=n) for n, c in enumerate(walkers)]

            def load(base: str) -> list[list[bytes]]:
                return [encoded(base, c, plan) for c, plan in zip(walkers, plans, strict=True)]

            starts = [0] * args.clients
        else:
            headers = {"Authorization": f"Bearer {stack.token}"}

            def load(base: str) -> list[list[bytes]]:
                return [shared_requests(base, headers, stack.targets)] * args.clients

            starts = list(range(args.clients))
        bare = ServiceProcess("bare", "bench.bare_app:app", free_port(), settings_env(stack.settings), stack.logs)
        bare.start()
        try:
            bare.wait_ready()
            if args.scenario == "walk":
                same_answers(stack.gateway.url, bare.url, walkers, plans)
            measure(stack, bare, load, starts, args)
        finally:
            bare.stop()


async def seed_walkers(stack: SeededStack, clients: int, per_client: int) -> list[ClientReports]:
    client = make_client(stack.settings)
    try:
        return await seed_clients(client[stack.settings.mongo_db], stack.targets[0][0], clients, per_client)
    finally:
        await client.close()


def same_answers(gateway: str, bare: str, walkers: list[ClientReports], plans: list[list[Request]]) -> None:
    """Both apps give the same answer (as JSON values) to the first requests of a few walks: the
    baseline does the same work, not a cheaper one."""
    for c, plan in list(zip(walkers, plans, strict=True))[:3]:
        headers = {"Authorization": f"Bearer {c.token}"}
        for method, target, body in plan[:12]:
            answers = [
                httpx.request(method, base + target, json=body, headers=headers, timeout=30) for base in (gateway, bare)
            ]
            if answers[0].status_code != 200 or answers[0].json() != answers[1].json():
                raise AssertionError(f"{method} {target}: gateway and bare app answer differently")


def measure(
    stack: SeededStack,
    bare: ServiceProcess,
    load: Callable[[str], list[list[bytes]]],
    starts: list[int],
    args: argparse.Namespace,
) -> None:
    """Both apps under the same load, alternating rounds; prints medians, CPU and shared work."""
    mongo, gw = stack.mongo, stack.gateway.url
    servers = {"bare FastAPI": (bare.url, bare), "gateway": (gw, stack.gateway)}
    walks = {name: load(base) for name, (base, _) in servers.items()}
    for name in servers:
        drive(servers[name][0], walks[name], starts, 2)  # warm-up
    assert mongo.proc is not None
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    cpu: dict[str, dict[str, float]] = {name: {} for name in servers}
    joined = {"requests": 0.0, "reads": 0.0}
    for i in range(args.rounds):
        # Alternating, and each round starting with the other one: the VM's speed drifts by
        # tens of percent from minute to minute, and that must hit both alike.
        for name in list(servers) if i % 2 == 0 else list(servers)[::-1]:
            base, server = servers[name]
            assert server.proc is not None
            pids = {"app": server.proc.pid, "database": mongo.proc.pid, "load client": os.getpid()}
            before = {k: cpu_seconds(pid) for k, pid in pids.items()}
            joined_before = coalesced(gw)
            runs[name].append(drive(base, walks[name], starts, args.seconds))
            for k, pid in pids.items():
                cpu[name][k] = cpu[name].get(k, 0.0) + cpu_seconds(pid) - before[k]
            if name == "gateway":
                for k, v in coalesced(gw).items():
                    joined[k] += v - joined_before[k]
    report(runs, cpu, joined, args)
    if args.open_load > 0:
        capacity = statistics.median(r["rps"] for r in runs["bare FastAPI"])
        open_loop(servers, walks, args.open_load * capacity, capacity, args)


def open_loop(
    servers: dict[str, tuple[str, ServiceProcess]],
    walks: dict[str, list[list[bytes]]],
    rate: float,
    capacity: float,
    args: argparse.Namespace,
) -> None:
    """Both apps at the same offered rate (Poisson arrivals, same seeds), alternating rounds:
    latency at a load the server sustains, which closed-loop rounds cannot show."""
    print(
        f"open loop: offered {rate:.1f} req/s = {args.open_load:.2f} x the bare app's closed-loop median "
        f"{capacity:.1f} req/s, {args.rounds} rounds of {args.open_seconds:.0f} s per app, alternating"
    )
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in servers}
    for i in range(args.rounds):
        for name in list(servers) if i % 2 == 0 else list(servers)[::-1]:
            # The same arrival times for both apps in a round, different ones from round to round.
            runs[name].append(summary(run_open_walks(servers[name][0], walks[name], rate, args.open_seconds, seed=i)))
    for name, rs in runs.items():
        med = {k: statistics.median(r[k] for r in rs) for k in ("p50_ms", "p99_ms", "rps")}
        p99s = ", ".join(f"{r['p99_ms']:.1f}" for r in rs)
        print(
            f"{name:<13} open loop, median of {args.rounds}: p50 {med['p50_ms']:6.1f} ms  p99 {med['p99_ms']:6.1f} ms  "
            f"served {med['rps']:.1f} req/s  errors {sum(r['errors'] for r in rs):.0f}  (p99 of each round: {p99s} ms)"
        )
    print(f"load average {os.getloadavg()[0]:.1f}")


def report(
    runs: dict[str, list[dict[str, float]]],
    cpu: dict[str, dict[str, float]],
    joined: dict[str, float],
    args: argparse.Namespace,
) -> None:
    med = {name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()}
    for name, r in med.items():
        print(
            f"{name:<13} median of {args.rounds}: {r['rps']:>8.1f} req/s  p50 {r['p50_ms']:6.1f} ms  "
            f"p99 {r['p99_ms']:6.1f} ms  errors {sum(x['errors'] for x in runs[name]):.0f}  "
            f"(req/s of each round: {', '.join(str(round(x['rps'])) for x in runs[name])})"
        )
    for name, spent in cpu.items():
        # Where the two cores went: the load client shares them with the servers.
        total = sum(x["requests"] for x in runs[name])
        print(
            f"{name:<13} CPU s: "
            + ", ".join(f"{k} {v:.1f}" for k, v in spent.items())
            + f"; app CPU per request {spent['app'] / total * 1e6:.0f} µs, database {spent['database'] / total * 1e6:.0f} µs"
        )
    g, b = med["gateway"], med["bare FastAPI"]
    served = sum(x["requests"] for x in runs["gateway"])
    run_count = served - joined["requests"]
    share = joined["requests"] / served if served else 0.0
    print(
        f"gateway answers served by a shared (coalesced) in-flight request: {joined['requests']:.0f} of "
        f"{served:.0f} = {share:.1%}"
    )
    # Each run makes two reads (its token, then the report or the page of rows).
    print(
        f"reads of the remaining {run_count:.0f} runs that joined an identical read: "
        f"{joined['reads']:.0f} of {2 * run_count:.0f}"
    )
    ratios = [gr["rps"] / br["rps"] for gr, br in zip(runs["gateway"], runs["bare FastAPI"], strict=True)]
    print(
        f"ratio gateway/bare: {g['rps'] / b['rps']:.2f}x median requests/s (per round: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.9x); gateway p99 {g['p99_ms']:.1f} ms "
        f"(target < 20 ms); shared answers {share:.1%} (must be < 5 %); load average {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
