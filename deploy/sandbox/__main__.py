"""Serve the three sandbox APIs on loopback: `python -m deploy.sandbox --sweetclub 9101 --eduzz 9102 --ofd 9103`.

Data size and seed: `--size` / `--seed` (or SANDBOX_SIZE / SANDBOX_SEED), up to 100 000 sales each
(50 000 take about 2 s to make); `--eduzz-order oldest_first|newest_first|shuffled` (or
SANDBOX_EDUZZ_ORDER) picks the order of Eduzz's listing. A port of 0 leaves that emulator off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI

from deploy.sandbox import eduzz, ofd, sweetclub
from deploy.sandbox.faults import MAX_SIZE


async def serve(host: str, ports: dict[str, int], size: int, seed: int, eduzz_order: str | None = None) -> None:
    factories: dict[str, Callable[[], FastAPI]] = {
        "sweetclub": lambda: sweetclub.create_app(size=size, seed=seed),
        "eduzz": lambda: eduzz.create_app(size=size, seed=seed, order=eduzz_order),
        "ofd": lambda: ofd.create_app(size=size, seed=seed),
    }
    servers = [
        uvicorn.Server(uvicorn.Config(factories[name](), host=host, port=port, log_level="warning", access_log=False))
        for name, port in ports.items()
        if port
    ]
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m deploy.sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--sweetclub", type=int, default=9101)
    parser.add_argument("--eduzz", type=int, default=9102)
    parser.add_argument("--ofd", type=int, default=9103)
    parser.add_argument("--size", type=int, default=None)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--eduzz-order", choices=eduzz.ORDERS, default=None)
    args = parser.parse_args()
    size = args.size if args.size is not None else int(os.environ.get("SANDBOX_SIZE", "1000"))
    seed = args.seed if args.seed is not None else int(os.environ.get("SANDBOX_SEED", "42"))
    if not 0 <= size <= MAX_SIZE:
        parser.error(f"--size must be 0..{MAX_SIZE}")
    ports = {"sweetclub": args.sweetclub, "eduzz": args.eduzz, "ofd": args.ofd}
    asyncio.run(serve(args.host, ports, size, seed, args.eduzz_order))


if __name__ == "__main__":
    main()
