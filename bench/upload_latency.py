"""How long a small upload waits for its 200, against the parse alone of the same file, same run.

    .venv/bin/python -m bench.upload_latency [--rows 10000] [--rounds 5]
    .venv/bin/python -m bench.upload_latency --rows 1000000 --rounds 1   # the gateway's peak RSS at 1 M rows

The workbook is bench/workbooks.py's (the file bench.parse reads). Named baseline: bench.parse's
"ours" on that file (services.ingest.excel.parse_workbook in a fresh process: sniff, worker
spawn, calamine, validation, spool), measured in the same run, rounds alternating with the
uploads. The upload is `POST /sales/create` against the three services as uvicorn processes on
their own SecantusDB and the local RabbitMQ, timed by the client until the 200 (which carries the
verdict: a `pending` answer would mean the wait ran out, and fails the bench). Beside it, ingest's
own parse time for that upload (from its log), so what is left is the fixed cost around the parse:
the gateway streaming the file to GridFS, the command's trip, ingest reading the file back, and
the verdict's way back to the gateway.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from bench.parse import measure
from bench.pipeline import status_mb
from bench.workbooks import workbook
from tests.infra import ensure_rabbitmq, rabbit_url
from tests.reliability.harness import SecantusProcess, running_stack, upload


def ingest_parse_seconds(log_path: Path) -> float | None:
    """The `seconds` of ingest's last "workbook parsed" log line."""
    found = None
    for line in log_path.read_text(errors="replace").splitlines():
        if '"workbook parsed"' in line:
            found = float(json.loads(line)["seconds"])
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    path = workbook(args.rows)
    content = path.read_bytes()
    print(f"workbook {path.name}: {args.rows} rows, {len(content) / 1e6:.2f} MB")
    ensure_rabbitmq()
    mongo = SecantusProcess()
    mongo.start()
    try:
        with running_stack(
            mongo.url,
            rabbit_url(),
            max_upload_bytes=200 * 1024**2,
            validation_wait_seconds=1800,
            parse_timeout_seconds=1800,
            parse_memory_bytes=4 * 1024**3,
        ) as stack:
            if args.rows <= 100_000:
                upload(stack, "bench", content, name="warm-up")
            parse_alone: list[float] = []
            answered: list[float] = []
            in_ingest: list[float] = []
            for i in range(args.rounds):
                # Alternating, each round starting with the other: the VM's speed drifts.
                for step in ("parse", "upload") if i % 2 == 0 else ("upload", "parse"):
                    if step == "parse":
                        parse_alone.append(float(measure("ours", path)["seconds"]))
                        continue
                    started = time.perf_counter()
                    r = upload(stack, "bench", content, name=f"bench-{i}", timeout=1800)
                    answered.append(time.perf_counter() - started)
                    assert r.status_code == 200, r.text
                    assert r.json()["status"] != "pending", "the verdict did not come within the wait"
                    in_ingest.append(ingest_parse_seconds(stack.processes["ingest"].log_path) or float("nan"))
                gateway = stack.processes["gateway"].proc
                assert gateway is not None
                print(f"gateway peak RSS so far (VmHWM): {status_mb(gateway.pid):.0f} MB (target < 150 MB at 1 M rows)")
                print(
                    f"round {i}: parse alone {parse_alone[-1]:.3f} s, upload answered 200 after {answered[-1]:.3f} s "
                    f"(ingest's parse inside it {in_ingest[-1]:.3f} s)"
                )
    finally:
        mongo.remove()
    p, a, g = statistics.median(parse_alone), statistics.median(answered), statistics.median(in_ingest)
    around = statistics.median(x - y for x, y in zip(answered, in_ingest, strict=True))
    print(
        f"median of {args.rounds}: parse alone {p:.3f} s; upload 200 after {a:.3f} s = {a / p:.2f}x the parse alone "
        f"(target <= 1.5x); ingest's own parse {g:.3f} s ({g / p:.2f}x); everything around it (per round, "
        f"median) {around:.3f} s; ratio per round: "
        f"{', '.join(f'{x / y:.2f}' for x, y in zip(answered, parse_alone, strict=True))}"
    )


if __name__ == "__main__":
    main()
