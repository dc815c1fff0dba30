"""Serve the three sandbox APIs on loopback: `python -m deploy.sandbox --sweetclub 9101 --eduzz 9102 --ofd 9103`.

Data size and seed: `--size` / `--seed` (or SANDBOX_SIZE / SANDBOX_SEED), up to 100 000 sales each.
A port of 0 leaves that emulator off.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn

from deploy.sandbox import eduzz, ofd, sweetclub
from deploy.sandbox.faults import MAX_SIZE


async def serve(host: str, ports: dict[str, int], size: int, seed: int) -> None:
    factories = {"sweetclub": sweetclub.create_app, "eduzz": eduzz.create_app, "ofd": ofd.create_app}
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                factories[name](size=size, seed=seed), host=host, port=port, log_level="warning", access_log=False
            )
        )
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
    args = parser.parse_args()
    size = args.size if args.size is not None else int(os.environ.get("SANDBOX_SIZE", "1000"))
    seed = args.seed if args.seed is not None else int(os.environ.get("SANDBOX_SEED", "42"))
    if not 0 <= size <= MAX_SIZE:
        parser.error(f"--size must be 0..{MAX_SIZE}")
    ports = {"sweetclub": args.sweetclub, "eduzz": args.eduzz, "ofd": args.ofd}
    asyncio.run(serve(args.host, ports, size, seed))


if __name__ == "__main__":
    main()
