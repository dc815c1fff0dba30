"""Upload-to-report time through the running services vs the raw insert_many rate of the same
SecantusDB, measured in the same run; plus each service's peak RSS (VmHWM), and ingest's peak
with its parse worker sampled together, against the bare parser's peak on the same file.

    .venv/bin/python -m bench.pipeline [--rows 100000] [--repeat 1]

Starts its own SecantusDB and the three services (gateway, ingest, analytics) on the local
RabbitMQ under a throw-away namespace. The baselines re-insert what the pipeline stored (read
back from `sales`) into a scratch collection, 5 000 rows per insert_many: the raw rate is its
rows, one bare document each (ObjectId `_id`s, no secondary index); the second is the very chunks
stored (`shared.sale_chunks`), with their `_id`s and the sales index. Issue 19's baseline is the
sum of the two costs an upload cannot avoid, each measured alone in the same round: the bare parse
(calamine only iterating this workbook, fresh process) and the insert of the stored chunks. The
bench prints where every second of each upload went (ingest's logged timeline, on the same clock).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import bson
from bson.codec_options import CodecOptions
from bson.raw_bson import RawBSONDocument
from pymongo import MongoClient

from bench.parse import measure
from shared.sale_chunks import CHUNK_ROWS
from tests.infra import ensure_rabbitmq, rabbit_url
from tests.reliability.campaign import campaign_xlsx, make_rows, metrics_of, reference_metrics
from tests.reliability.harness import SecantusProcess, running_stack, upload, wait_report


def status_mb(pid: int, field: str = "VmHWM") -> float:
    """A memory field of /proc/<pid>/status in MB (VmHWM: peak RSS; VmRSS: now); 0 once it exited."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:  # the process ended between listing and reading
        pass
    return 0.0


def _with_descendants(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(c) for c in task.read_text().split()]
        i += 1
    return pids


class TreePeakSampler:
    """The peak of a process's RSS plus its children's, sampled together every `interval` seconds:
    ingest's real footprint at its worst moment (its parse worker is a child process), where the
    two VmHWM peaks added up would count moments that never coincide."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak_mb = pid, interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                total = sum(status_mb(p, "VmRSS") for p in _with_descendants(self.pid))
            except OSError:
                continue
            self.peak_mb = max(self.peak_mb, total)

    def __enter__(self) -> TreePeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def raw_insert_rate(db: Any, docs: Sequence[Any], *, like_sales: bool, rows: int, batch: int) -> float:
    """insert_many of the documents into a scratch collection, `batch` documents at a time, in rows
    per second: bare (ObjectId `_id`s, no secondary index), or `like_sales` (their own `_id`s and
    the sales collection's indexes)."""
    scratch = db["bench_raw_insert"]
    scratch.drop()
    if like_sales:
        for spec in db.sales.list_indexes():
            if spec["name"] != "_id_":
                scratch.create_index(list(spec["key"].items()), name=spec["name"])
    started = time.perf_counter()
    for i in range(0, len(docs), batch):
        part = (
            docs[i : i + batch]
            if like_sales
            else [{k: v for k, v in d.items() if k != "_id"} for d in docs[i : i + batch]]
        )
        scratch.insert_many(part, ordered=False)
    elapsed = time.perf_counter() - started
    scratch.drop()
    return rows / elapsed


def parse_worker_peak_mb(log_path: Path) -> float | None:
    """The parse worker's own peak RSS, as ingest logs it after each workbook."""
    peaks = [
        json.loads(line).get("peak_rss_bytes")
        for line in log_path.read_text().splitlines()
        if '"workbook parsed"' in line
    ]
    known = [p for p in peaks if isinstance(p, int)]
    return max(known) / 2**20 if known else None


def _log_lines(log_path: Path, message: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log_path.read_text().splitlines() if f'"{message}"' in line]


def _epoch(ts: str) -> float:
    return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()


def upload_timeline(log_path: Path, posted_at: float, accepted_at: float, done_at: float) -> list[tuple[str, float]]:
    """Where the seconds of the last upload went: (step, seconds), from the bench's POST to the
    report's success, through ingest's own timeline (seconds since it took the command)."""
    stored = _log_lines(log_path, "upload stored")[-1]
    steps: dict[str, float] = stored["timeline"]
    taken = _epoch(stored["ts"]) - steps["ingested"]
    marks = [("receive (gateway, GridFS, command)", taken - posted_at)]
    previous = 0.0
    names = {
        "downloaded": "download the upload",
        "sniffed": "sniff",
        "spawned": "spawn the worker",
        "verdict": "to the verdict (every row checked)",
        "first_chunk": "to the first chunk on the pipe",
        "stored": "to the last chunk stored (build + store overlapped)",
        "ingested": "totals, source report, announce",
    }
    # In time order: a file read in parts has its first chunk stored before its verdict.
    for step in sorted((s for s in names if s in steps), key=lambda s: steps[s]):
        marks.append((names[step], steps[step] - previous))
        previous = steps[step]
    marks.append(("recompute + report (analytics, poll)", done_at - (taken + previous)))
    marks.append(("(200 answered after)", accepted_at - posted_at))
    return marks


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--no-bare-insert",
        action="store_true",
        help="skip the bare one-document-per-row baseline (the November target's; issue 19's ratio does not use it)",
    )
    args = parser.parse_args()
    ensure_rabbitmq()
    t = time.perf_counter()
    rows = make_rows(args.rows, seed=1)
    content = campaign_xlsx(rows)
    print(f"workbook: {args.rows} rows, {len(content) / 1e6:.1f} MB, built in {time.perf_counter() - t:.1f}s")
    # Named baseline for ingest's memory: the bare parser (calamine, only iterating) on this very
    # file, in a fresh process, before anything else runs.
    with tempfile.NamedTemporaryFile(suffix=".xlsx") as f:
        f.write(content)
        f.flush()
        bare = measure("calamine", Path(f.name))
        bare_parser_mb = bare["peak_rss"] / 2**20
    print(f"bare parser (calamine) on this workbook: {bare['seconds']:.1f} s, peak RSS {bare_parser_mb:.0f} MB")
    mongo = SecantusProcess()
    mongo.start()
    try:
        with running_stack(mongo.url, rabbit_url(), max_upload_bytes=500 * 1024**2, validation_wait_seconds=900,
                           parse_timeout_seconds=900, parse_memory_bytes=4 * 1024**3) as stack:  # fmt: skip
            pipeline: list[float] = []
            raw: list[float] = []
            indexed: list[float] = []
            db = MongoClient(mongo.url)[stack.settings.mongo_db]
            ingest_proc = stack.processes["ingest"].proc
            assert ingest_proc is not None
            tree_peaks: list[float] = []
            against_sum: list[float] = []
            for i in range(args.repeat):
                posted_at = time.time()
                started = time.perf_counter()
                with TreePeakSampler(ingest_proc.pid) as sampler:
                    r = upload(stack, "bench", content, budget="100000", name=f"bench-{i}", timeout=1800)
                    accepted = time.perf_counter() - started
                    assert r.status_code == 200, r.text
                    report = wait_report(stack, "bench", r.json()["report_id"], timeout=1800)
                    elapsed = time.perf_counter() - started
                    done_at = time.time()
                tree_peaks.append(sampler.peak_mb)
                assert report["status"] == "success", report
                assert metrics_of(report) == reference_metrics(rows, Decimal(100000)), "metrics differ"
                pipeline.append(args.rows / elapsed)
                print(f"run {i}: 200 after {accepted:.1f}s, report success after {elapsed:.1f}s "
                      f"→ {args.rows / elapsed:,.0f} rows/s")  # fmt: skip
                # The stored chunks as the server hands them over: re-inserted as they are, like ingest
                # sends the worker's bytes (no client-side encoding in the baseline either).
                raw_sales = db.sales.with_options(codec_options=CodecOptions(document_class=RawBSONDocument))
                chunks = list(raw_sales.find({"report_id": report["id"]}))
                assert sum(len(c["rows"]) for c in chunks) == args.rows
                if not args.no_bare_insert:
                    docs = [row for chunk in chunks for row in bson.decode(chunk.raw)["rows"]]
                    raw.append(raw_insert_rate(db, docs, like_sales=False, rows=args.rows, batch=5_000))
                    del docs
                indexed.append(raw_insert_rate(db, chunks, like_sales=True, rows=args.rows, batch=5_000 // CHUNK_ROWS))
                del chunks
                bare_text = (
                    f"raw insert_many of the same rows, a document each: {raw[-1]:,.0f} docs/s bare; " if raw else ""
                )
                print(f"run {i}: {bare_text}insert_many of the very chunks stored, with the sales index: "
                      f"{indexed[-1]:,.0f} rows/s")  # fmt: skip
                for step, seconds in upload_timeline(stack.processes["ingest"].log_path, posted_at,
                                                     posted_at + accepted, done_at):  # fmt: skip
                    print(f"    {step:40} {seconds:7.2f} s")
                with tempfile.NamedTemporaryFile(suffix=".xlsx") as f:
                    f.write(content)
                    f.flush()
                    parse_s = measure("calamine", Path(f.name))["seconds"]
                insert_s = args.rows / indexed[-1]
                against_sum.append(elapsed / (parse_s + insert_s))
                print(f"run {i}: upload to report {elapsed:.1f} s against bare parse {parse_s:.1f} s + stored-chunk "
                      f"insert {insert_s:.1f} s = {parse_s + insert_s:.1f} s: {against_sum[-1]:.2f}x (target <= 1.0x)")  # fmt: skip
            rss = {name: status_mb(p.proc.pid) for name, p in stack.processes.items() if p.proc}
            p_med, i_med = statistics.median(pipeline), statistics.median(indexed)
            if raw:
                r_med = statistics.median(raw)
                print(f"median pipeline {p_med:,.0f} rows/s vs raw insert_many {r_med:,.0f} docs/s: "
                      f"ratio {p_med / r_med:.2f}× (target ≥ 0.8×)")  # fmt: skip
            print(f"median pipeline {p_med:,.0f} rows/s vs insert_many of the stored chunks {i_med:,.0f} rows/s: "
                  f"{p_med / i_med:.2f}×")  # fmt: skip
            print(f"median upload-to-report against (bare parse + stored-chunk insert), same rounds: "
                  f"{statistics.median(against_sum):.2f}x (rounds {[round(x, 2) for x in against_sum]})")  # fmt: skip
            print("peak RSS (VmHWM) per service: " + ", ".join(f"{k} {v:.0f} MB" for k, v in rss.items()))
            worker = parse_worker_peak_mb(stack.processes["ingest"].log_path)
            if worker:
                ingest = rss["ingest"] + worker
                print(f"peak RSS of ingest's parse worker: {worker:.0f} MB ({worker / bare_parser_mb:.2f}× the bare "
                      f"parser); with the ingest service process: {ingest:.0f} MB ({ingest / bare_parser_mb:.2f}×, "
                      "target ≤ 1.2×)")  # fmt: skip
            else:
                print("parse worker peak not logged")
            tree = max(tree_peaks)
            print(f"ingest service + parse worker sampled together (every 50 ms): peak {tree:.0f} MB "
                  f"({tree / bare_parser_mb:.2f}× the bare parser, target ≤ 1.2×)")  # fmt: skip
    finally:
        mongo.remove()


if __name__ == "__main__":
    main()
