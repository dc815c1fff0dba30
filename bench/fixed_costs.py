"""Fixed costs of a small upload on ingest's side: the parse worker started per file, or taken
ready from `SpareWorker`, on the same small workbook, alternating rounds, medians.

    .venv/bin/python -m bench.fixed_costs [--rows 10000] [--rounds 5]

Each run is `stream_workbook` as the ingest service calls it (sniff, worker, every row checked,
chunks built and streamed; the chunks are only received here, storing is bench.pipeline's part).
The named baseline in the same run is calamine only iterating the file in a fresh process (the
bare parse), and the timeline shows what is fixed: sniff, spawn, the worker's start to its verdict.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.parse import measure
from bench.workbooks import workbook
from services.ingest.excel import ParseJob, ParseLimits
from services.ingest.excel.stream import SpareWorker, StreamResult, stream_workbook


async def one(path: Path, spare: SpareWorker | None) -> tuple[float, StreamResult]:
    async def store(batch: list[Any]) -> None:
        return None

    async def accepted(rows: int) -> None:
        return None

    with tempfile.TemporaryDirectory(prefix="saleswire-bench-") as tmp:
        job = ParseJob(path, Path(tmp) / "spool.bson", "bench-report", "bench-source", -100123, 1)
        started = time.perf_counter()
        result = await stream_workbook(job, ParseLimits(), store=store, accepted=accepted, spare=spare)
        seconds = time.perf_counter() - started
    assert result.outcome.ok, result.outcome
    return seconds, result


async def rounds(path: Path, count: int) -> dict[str, list[tuple[float, StreamResult]]]:
    spare = SpareWorker()
    runs: dict[str, list[tuple[float, StreamResult]]] = {"fresh worker": [], "spare worker": []}
    try:
        for i in range(count):
            order = ["fresh worker", "spare worker"] if i % 2 == 0 else ["spare worker", "fresh worker"]
            for name in order:
                if name == "spare worker":
                    spare.refill()
                    await asyncio.sleep(3)  # the spare is started while the service is idle
                runs[name].append(await one(path, spare if name == "spare worker" else None))
                await asyncio.sleep(0.5)
    finally:
        await spare.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = workbook(args.rows)
    bare = [measure("calamine", path)["seconds"] for _ in range(args.rounds)]
    runs = asyncio.run(rounds(path, args.rounds))
    base = statistics.median(bare)
    print(f"bare parse (calamine, fresh process): median {base:.3f} s  runs {[round(b, 3) for b in bare]}")
    for name, results in runs.items():
        seconds = statistics.median(s for s, _ in results)
        steps = {k: statistics.median(r.timeline.get(k, 0.0) for _, r in results) for k in results[0][1].timeline}
        print(f"{name:13} median {seconds:.3f} s = {seconds / base:.2f}x the bare parse; "
              f"median timeline {steps}  runs {[round(s, 3) for s, _ in results]}")  # fmt: skip


if __name__ == "__main__":
    main()
