"""Gateway read load against a bare FastAPI app, same machine, same run.

    .venv/bin/python -m bench.gateway_load --clients 50 --seconds 10 [--rounds 3] [--reports 25]

Starts SecantusDB, gateway + ingest + analytics (uvicorn processes) on the local RabbitMQ, uploads
one campaign, then drives `POST /sales/analytic/report` and the sales listing with N concurrent
keep-alive clients (bench/loadgen.py, a lean client) for a fixed time, and the same against
`bench/bare_app.py`, alternating for --rounds rounds each. Prints the median requests/s, p50 and
p99 latency of each, the CPU each process spent, and the ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.loadgen import encode_request, run_load
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

CHANNEL = -1001234567890


def drive(
    base: str, headers: dict[str, str], targets: list[tuple[str, str]], clients: int, seconds: float
) -> dict[str, float]:
    """Half report reads, half sales listings, over `clients` keep-alive connections; `targets`
    are (report id, source report id) pairs, spread over the clients."""
    requests = []
    for report_id, source_id in targets:
        requests.append(encode_request("POST", f"{base}/sales/analytic/report", headers, {"report_id": report_id}))
        requests.append(
            encode_request("GET", f"{base}/sales/analytic/{CHANNEL}/{source_id}/sales?status=sale", headers)
        )
    r = run_load(base, requests, clients, seconds)
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
        "--reports",
        type=int,
        default=1,
        help="campaigns the clients read (1: all ask for the same one; 25: no two clients at once)",
    )
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per app, alternating")
    args = parser.parse_args()
    with seeded_stack(args.reports) as stack:
        bare = ServiceProcess("bare", "bench.bare_app:app", free_port(), {}, stack.logs)
        bare.start()
        try:
            measure(stack, bare, args)
        finally:
            bare.stop()


def measure(stack: SeededStack, bare: ServiceProcess, args: argparse.Namespace) -> None:
    """Both apps under the same load, alternating rounds; prints medians, CPU and shared work."""
    mongo, gw, targets = stack.mongo, stack.gateway.url, stack.targets
    headers = {"Authorization": f"Bearer {stack.token}"}
    for _ in range(50):
        try:
            if httpx.post(f"{bare.url}/sales/analytic/report", json={}).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    servers = {"bare FastAPI": (bare.url, bare), "gateway": (gw, stack.gateway)}
    for base, _ in servers.values():
        drive(base, headers, targets, args.clients, 2)  # warm-up
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
            runs[name].append(drive(base, headers, targets, args.clients, args.seconds))
            for k, pid in pids.items():
                cpu[name][k] = cpu[name].get(k, 0.0) + cpu_seconds(pid) - before[k]
            if name == "gateway":
                for k, v in coalesced(gw).items():
                    joined[k] += v - joined_before[k]
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
            + f"; app CPU per request {spent['app'] / total * 1e6:.0f} µs"
        )
    g, b = med["gateway"], med["bare FastAPI"]
    served = sum(x["requests"] for x in runs["gateway"])
    run_count = served - joined["requests"]
    print(f"gateway requests answered by an identical one in flight: {joined['requests']:.0f} of {served:.0f}")
    # Each run makes two reads (its token, then the report or the page of rows).
    print(
        f"reads of the remaining {run_count:.0f} runs that joined an identical read: "
        f"{joined['reads']:.0f} of {2 * run_count:.0f}"
    )
    ratios = [gr["rps"] / br["rps"] for gr, br in zip(runs["gateway"], runs["bare FastAPI"], strict=True)]
    print(
        f"ratio gateway/bare: {g['rps'] / b['rps']:.2f}x median requests/s (per round: "
        f"{', '.join(f'{x:.2f}' for x in ratios)}; target >= 0.5x); gateway p99 {g['p99_ms']:.1f} ms (target < 50 ms)"
    )


if __name__ == "__main__":
    main()
