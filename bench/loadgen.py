"""A lean HTTP/1.1 load client for bench/gateway_load.py: N keep-alive connections sending
pre-encoded requests for a fixed time, either back to back (closed loop: each connection sends its
next request when the last is answered, so the server sets the pace) or at a fixed offered rate
(open loop: Poisson arrivals, each taken by an idle connection, latency counted from the arrival).

Why not httpx: on a 2-core machine the load client shares the cores with the servers it measures.
httpx spent about 2 ms of CPU per request, so the bare baseline was bound by its client (9.9 of
10 CPU seconds). Raw asyncio streams on uvloop cost a fraction of that, leaving the cores to the
servers under test.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import uvloop


@dataclass
class LoadResult:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, int(len(ordered) * q) - 1)] * 1000 if ordered else float("nan")

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else float("nan")

    @property
    def errors(self) -> int:
        return sum(n for code, n in self.statuses.items() if code != 200)


def encode_request(method: str, url: str, headers: dict[str, str], body: Any = None) -> bytes:
    """One complete HTTP/1.1 request (keep-alive), JSON body if any."""
    parts = urlsplit(url)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    payload = b"" if body is None else json.dumps(body).encode()
    lines = [f"{method} {target} HTTP/1.1", f"Host: {parts.netloc}", f"Content-Length: {len(payload)}"]
    if body is not None:
        lines.append("Content-Type: application/json")
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


async def _read_response(reader: asyncio.StreamReader) -> int:
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key == b"content-length":
            length = int(value)
        elif key == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while size := int((await reader.readline()).split(b";")[0], 16):
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


async def _drive(host: str, port: int, walks: list[list[bytes]], starts: list[int], seconds: float) -> LoadResult:
    result = LoadResult()
    stop = time.perf_counter() + seconds

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        requests = walks[n]
        i = starts[n]
        try:
            while time.perf_counter() < stop:
                started = time.perf_counter()
                writer.write(requests[i % len(requests)])
                status = await _read_response(reader)
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                i += 1
        finally:
            writer.close()

    began = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(len(walks))))
    result.elapsed = time.perf_counter() - began
    return result


async def _drive_open(
    host: str, port: int, walks: list[list[bytes]], rate: float, seconds: float, seed: int
) -> LoadResult:
    result = LoadResult()
    arrivals: asyncio.Queue[float | None] = asyncio.Queue()

    async def client(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        requests = walks[n]
        i = 0
        try:
            while (arrived := await arrivals.get()) is not None:
                writer.write(requests[i % len(requests)])
                status = await _read_response(reader)
                # From the arrival, not from the send: time spent waiting for an idle connection is
                # part of what a user would see (no coordinated omission).
                result.latencies.append(time.perf_counter() - arrived)
                result.statuses[status] = result.statuses.get(status, 0) + 1
                i += 1
        finally:
            writer.close()

    clients = [asyncio.create_task(client(n)) for n in range(len(walks))]
    await asyncio.sleep(0.2)  # every connection open before the first arrival
    rnd = random.Random(seed)
    began = time.perf_counter()
    due = began
    while (due := due + rnd.expovariate(rate)) < began + seconds:
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        arrivals.put_nowait(due)
    for _ in clients:
        arrivals.put_nowait(None)  # each connection stops once the arrivals before it are served
    await asyncio.gather(*clients)
    result.elapsed = time.perf_counter() - began
    return result


def run_load(base_url: str, requests: list[bytes], clients: int, seconds: float) -> LoadResult:
    """Closed-loop load: each of `clients` connections cycles through `requests` (offset by its
    number, so the mix is even at every moment) until `seconds` have passed."""
    return run_walks(base_url, [requests] * clients, seconds, starts=list(range(clients)))


def run_walks(base_url: str, walks: list[list[bytes]], seconds: float, starts: list[int] | None = None) -> LoadResult:
    """Closed-loop load: one connection per walk, each cycling through its own requests (from
    `starts[n]`, else the top) until `seconds` have passed."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    return uvloop.run(_drive(parts.hostname, parts.port, walks, starts or [0] * len(walks), seconds))


def run_open_walks(base_url: str, walks: list[list[bytes]], rate: float, seconds: float, seed: int = 0) -> LoadResult:
    """Open-loop load: requests arrive at `rate` per second on average (Poisson, seeded) for
    `seconds`; each arrival is taken by an idle connection, which sends the next request of its own
    walk, so a connection still has one request in flight at a time. Latency runs from the
    arrival; arrivals wait in a queue when every connection is busy."""
    parts = urlsplit(base_url)
    assert parts.hostname is not None
    assert parts.port is not None
    return uvloop.run(_drive_open(parts.hostname, parts.port, walks, rate, seconds, seed))
