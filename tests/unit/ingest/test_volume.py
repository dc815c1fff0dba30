"""A realistic generated workbook through parse_workbook (bench/workbooks.py generator).

Default: 3 000 rows (about a second). `SALESWIRE_LONG_TESTS=1`: 200 000 rows, and the
throughput must stay above a floor well below the measured ~50 000 rows/s (docs/benchmarks.md)
so that only a real regression, not a busy machine, fails it.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import bson

from bench.workbooks import write_workbook
from services.ingest.excel import ParseJob, ParseLimits, parse_workbook
from shared.sale_rows import ACTION_STATUSES

LONG = os.environ.get("SALESWIRE_LONG_TESTS") == "1"
ROWS = 200_000 if LONG else 3_000
MIN_ROWS_PER_SECOND = 15_000


async def test_generated_workbook_parses_completely(tmp_path: Path, make_job: Callable[..., ParseJob]) -> None:
    path = write_workbook(tmp_path / "generated.xlsx", ROWS, seed=11)
    job = make_job(path)
    outcome = await parse_workbook(job, ParseLimits(timeout_seconds=600))
    assert outcome.ok, outcome
    assert outcome.rows == ROWS
    seen = 0
    with job.spool_path.open("rb") as fh:
        for expected_row, doc in enumerate(bson.decode_file_iter(fh, bson.CodecOptions(tz_aware=True)), start=2):
            seen += 1
            assert doc["row"] == expected_row
            assert doc["_id"] == f"src1:{expected_row}"
            assert doc["status"] in (None, *ACTION_STATUSES)
            if doc["status"] is not None:
                assert doc["action_date"] >= doc["sub_date"]
                assert doc["action_period_ms"] >= 0
            if doc["status"] == "sale":
                assert doc["purchase_amount"].to_decimal() > 0
            assert doc["username"] is None or not doc["username"].startswith("@")
    assert seen == ROWS
    if LONG:
        assert ROWS / outcome.elapsed_seconds > MIN_ROWS_PER_SECOND
