"""Parsing benchmark: our full parse_workbook against plain readers, each in its own process.

    .venv/bin/python -m bench.parse 100000                 # openpyxl baseline, calamine, ours
    .venv/bin/python -m bench.parse 1000000 --skip openpyxl --repeat 1
    .venv/bin/python -m bench.parse 100000 --layout sst       # shared strings + <dimension>
    .venv/bin/python -m bench.parse 1000000 --layout stream,sst --skip openpyxl   # same rounds

Readers measured:
  openpyxl  load_workbook(read_only=True) + iter_rows(values_only=True), just iterating (baseline)
  calamine  CalamineWorkbook.from_path + get_sheet_by_index(0) + iter_rows, just iterating
  ours      parse_workbook: sniff + worker process (fastexcel column-wise, or calamine + the row
            validator for files it leaves to them; validation of every cell + BSON spool of
            every row document)
  stream    stream_workbook, what the ingest service runs: the same worker building the stored
            chunks and streaming them through a pipe; here the chunks are only received
            (storing them is bench.pipeline's business), so this is parse + validate + build
Every reader runs in a fresh child process, so peak RSS is that reader's alone. Rounds alternate
(each reader once per round, in turn) and medians are quoted: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.workbooks import LAYOUTS, workbook

if TYPE_CHECKING:  # imported by each reader in its own process, so that its peak RSS is its own
    from services.ingest.excel import ParseJob

READERS = ("openpyxl", "calamine", "ours", "stream")


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (ours: the parse worker).
    Steadier than wall time on a loaded machine, so it is printed beside it."""
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def run_openpyxl(path: Path) -> dict[str, Any]:
    from openpyxl import load_workbook

    started = time.perf_counter()
    wb = load_workbook(path, read_only=True)
    ws = wb.worksheets[0]
    rows = sum(1 for _ in ws.iter_rows(values_only=True))
    wb.close()
    return {"seconds": time.perf_counter() - started, "rows": rows - 1, "peak_rss": _peak_rss()}


def run_calamine(path: Path) -> dict[str, Any]:
    from python_calamine import CalamineWorkbook

    started = time.perf_counter()
    sheet = CalamineWorkbook.from_path(str(path)).get_sheet_by_index(0)
    rows = sum(1 for _ in sheet.iter_rows())
    return {"seconds": time.perf_counter() - started, "rows": rows - 1, "peak_rss": _peak_rss()}


def _job(path: Path, tmp: Path) -> ParseJob:
    """The job both of our readers get: the workbook, a spool in `tmp`, a made-up report."""
    from services.ingest.excel import ParseJob

    return ParseJob(
        path=path,
        spool_path=tmp / "spool.bson",
        report_id="bench-report",
        source_report_id="bench-source",
        channel_id=-1001234567890,
        creator_id=1,
    )


def run_ours(path: Path) -> dict[str, Any]:
    from services.ingest.excel import ParseLimits, parse_workbook

    with tempfile.TemporaryDirectory(prefix="saleswire-bench-") as tmp:
        job = _job(path, Path(tmp))
        started = time.perf_counter()
        outcome = asyncio.run(parse_workbook(job, ParseLimits(timeout_seconds=3600)))
        seconds = time.perf_counter() - started
        if not outcome.ok:
            raise SystemExit(f"parse failed: {outcome.kind} {outcome.errors[:3]} {outcome.diagnostic}")
        spool_bytes = job.spool_path.stat().st_size
    return {
        "seconds": seconds,
        "rows": outcome.rows,
        # the worker's peak; the benchmark process itself only sniffs and waits
        "peak_rss": max(outcome.peak_rss_bytes or 0, _peak_rss()),
        "spool_bytes": spool_bytes,
    }


def run_stream(path: Path) -> dict[str, Any]:
    from services.ingest.excel import ParseLimits
    from services.ingest.excel.stream import stream_workbook

    received = [0, 0]

    async def store(batch: list[Any]) -> None:
        received[0] += len(batch)
        received[1] += sum(len(doc.raw) for doc in batch)

    async def accepted(rows: int) -> None:
        return None

    with tempfile.TemporaryDirectory(prefix="saleswire-bench-") as tmp:
        job = _job(path, Path(tmp))
        started = time.perf_counter()
        result = asyncio.run(stream_workbook(job, ParseLimits(timeout_seconds=3600), store=store, accepted=accepted))
        seconds = time.perf_counter() - started
    if not result.outcome.ok:
        raise SystemExit(f"parse failed: {result.outcome.kind} {result.outcome.errors[:3]} {result.outcome.diagnostic}")
    return {
        "seconds": seconds,
        "rows": result.outcome.rows,
        "peak_rss": max(result.outcome.peak_rss_bytes or 0, _peak_rss()),
        "chunks": received[0],
        "reader": result.reader,
        "timeline": result.timeline,
    }


RUNNERS = {"openpyxl": run_openpyxl, "calamine": run_calamine, "ours": run_ours, "stream": run_stream}


def measure(reader: str, path: Path) -> dict[str, Any]:
    """Run one reader in a fresh interpreter and return its JSON report."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.parse", "--child", reader, "--path", str(path)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _layouts(text: str) -> tuple[str, ...]:
    layouts = tuple(text.split(","))
    unknown = set(layouts) - set(LAYOUTS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown layout {', '.join(sorted(unknown))}: choose from {', '.join(LAYOUTS)}"
        )
    return layouts


def summarise(layout: str, readers: list[str], runs: dict[tuple[str, str], list[dict[str, Any]]]) -> dict[str, Any]:
    """Prints one layout's medians and its ratios to calamine's bare iteration of that workbook."""
    results: dict[str, dict[str, Any]] = {}
    for reader in readers:
        done = runs[layout, reader]
        seconds = statistics.median(r["seconds"] for r in done)
        results[reader] = {
            "seconds": seconds,
            "cpu": statistics.median(r["cpu"] for r in done),
            "rows": done[0]["rows"],
            "peak_rss": max(r["peak_rss"] for r in done),
            "all": [round(r["seconds"], 2) for r in done],
        }
        first = done[0]
        spool = f"  spool {first['spool_bytes'] / 2**20:.0f} MiB" if "spool_bytes" in first else ""
        print(
            f"{layout:6} {reader:9} {seconds:8.2f} s  cpu {results[reader]['cpu']:7.2f} s  "
            f"{first['rows'] / seconds:9.0f} rows/s  peak RSS {results[reader]['peak_rss'] / 2**20:7.0f} MiB  "
            f"runs {results[reader]['all']}{spool}",
            flush=True,
        )
    if "calamine" in results:
        base = results["calamine"]["seconds"]
        for reader in ("ours", "stream"):
            if reader in results:
                cpu = results["calamine"]["cpu"] / results[reader]["cpu"]
                print(f"{layout}: {reader} runs at {base / results[reader]['seconds']:.2f}x calamine's bare "
                      f"iteration rate (target >= 0.7x); by CPU seconds {cpu:.2f}x")  # fmt: skip
        if "stream" in results:
            # Parse and validate alone: the worker's verdict (every row checked), before it builds the
            # stored chunks and folds the totals, which the ingest service overlaps with the inserts.
            verdict = statistics.median(r["timeline"]["verdict"] for r in runs[layout, "stream"])
            print(f"{layout}: stream's verdict (parse + validate) after {verdict:.2f} s: {base / verdict:.2f}x "
                  f"calamine's bare iteration rate (target >= 0.7x)")  # fmt: skip
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int, nargs="?", default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=READERS)
    parser.add_argument(
        "--layout",
        type=_layouts,
        default=("stream",),
        help=f"one of {', '.join(LAYOUTS)} (bench/workbooks.py), or several joined by commas: "
        "measured in the same alternating rounds",
    )
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(RUNNERS[args.child](Path(args.path)) | {"cpu": _cpu_seconds()}))
        return

    layouts: tuple[str, ...] = args.layout
    paths = {layout: workbook(args.rows, layout) for layout in layouts}
    for layout, path in paths.items():
        print(
            f"workbook: {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.rows} rows x 15 columns, {layout} layout)"
        )
    readers = [r for r in READERS if r not in args.skip]
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {(lay, r): [] for lay in layouts for r in readers}
    for round_no in range(args.repeat):
        # Alternate the order each round, so that no reader (or layout) always runs first after a pause.
        order = [(lay, r) for lay in layouts for r in readers]
        for layout, reader in order if round_no % 2 == 0 else order[::-1]:
            runs[layout, reader].append(measure(reader, paths[layout]))
            last = runs[layout, reader][-1]
            extra = f"  ({last['reader']} path, timeline {last['timeline']})" if "timeline" in last else ""
            print(
                f"  round {round_no + 1} {layout:6} {reader:9} {last['seconds']:8.2f} s  cpu {last['cpu']:7.2f} s{extra}",
                flush=True,
            )
    for layout in layouts:
        results = summarise(layout, readers, runs)
        if "openpyxl" in results and "ours" in results:
            ratio = results["openpyxl"]["seconds"] / results["ours"]["seconds"]
            print(f"{layout}: ours is {ratio:.1f}x faster than the openpyxl baseline (which only iterates)")


if __name__ == "__main__":
    main()
