"""Parsing benchmark: our full parse_workbook against plain readers, each in its own process.

    .venv/bin/python -m bench.parse 100000                 # openpyxl baseline, calamine, ours
    .venv/bin/python -m bench.parse 1000000 --skip openpyxl --repeat 1
    .venv/bin/python -m bench.parse 100000 --layout excel     # shared strings + <dimension>

Readers measured:
  openpyxl  load_workbook(read_only=True) + iter_rows(values_only=True), just iterating (baseline)
  calamine  CalamineWorkbook.from_path + get_sheet_by_index(0) + iter_rows, just iterating
  ours      parse_workbook: sniff + worker process (calamine + validation of every cell +
            BSON spool of every document), i.e. everything the ingest service waits for
Every reader runs in a fresh child process, so peak RSS is that reader's alone.
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
from typing import Any

from bench.workbooks import LAYOUTS, workbook

READERS = ("openpyxl", "calamine", "ours")


def _peak_rss() -> int:
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


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


def run_ours(path: Path) -> dict[str, Any]:
    from services.ingest.excel import ParseJob, ParseLimits, parse_workbook

    with tempfile.TemporaryDirectory(prefix="saleswire-bench-") as tmp:
        job = ParseJob(
            path=path,
            spool_path=Path(tmp) / "spool.bson",
            report_id="bench-report",
            source_report_id="bench-source",
            channel_id=-1001234567890,
            creator_id=1,
        )
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


RUNNERS = {"openpyxl": run_openpyxl, "calamine": run_calamine, "ours": run_ours}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int, nargs="?", default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per reader; the median is reported")
    parser.add_argument("--skip", action="append", default=[], choices=READERS)
    parser.add_argument("--layout", choices=LAYOUTS, default="stream", help="see bench/workbooks.py")
    parser.add_argument("--child", choices=READERS, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(RUNNERS[args.child](Path(args.path))))
        return

    path = workbook(args.rows, args.layout)
    print(
        f"workbook: {path} ({path.stat().st_size / 2**20:.1f} MiB, {args.rows} rows x 15 columns, {args.layout} layout)"
    )
    results: dict[str, dict[str, Any]] = {}
    for reader in READERS:
        if reader in args.skip:
            continue
        runs = [measure(reader, path) for _ in range(args.repeat)]
        seconds = statistics.median(r["seconds"] for r in runs)
        results[reader] = {
            "seconds": seconds,
            "rows": runs[0]["rows"],
            "peak_rss": max(r["peak_rss"] for r in runs),
            "all": [round(r["seconds"], 2) for r in runs],
        }
        spool = f"  spool {runs[0]['spool_bytes'] / 2**20:.0f} MiB" if "spool_bytes" in runs[0] else ""
        print(
            f"{reader:9} {seconds:8.2f} s  {runs[0]['rows'] / seconds:9.0f} rows/s  "
            f"peak RSS {results[reader]['peak_rss'] / 2**20:7.0f} MiB  runs {results[reader]['all']}{spool}",
            flush=True,
        )
    if "openpyxl" in results and "ours" in results:
        ratio = results["openpyxl"]["seconds"] / results["ours"]["seconds"]
        print(f"ours is {ratio:.1f}x faster than the openpyxl baseline (which only iterates)")


if __name__ == "__main__":
    main()
