"""parse_workbook end to end: sniff in this process, the worker in a real child process."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bson
import pytest

from services.ingest.excel import ParseJob, ParseLimits, parse_workbook, runner
from tests.unit.ingest.conftest import WriteXlsx
from tests.unit.ingest.hostile import far_corner, minimal_ods, zip_bomb

LIMITS = ParseLimits(timeout_seconds=60, memory_bytes=2 * 1024**3)


def valid_rows(n: int) -> list[list[Any]]:
    return [["user_id", "sub_date", "status", "action_date", "purchase_amount"]] + [
        [1000 + i, "2024-01-01", "sale", "2024-01-02", 10.5] for i in range(n)
    ]


async def test_valid_workbook_is_spooled(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    job = make_job(write_xlsx(valid_rows(25), name="upload.bin"))
    outcome = await parse_workbook(job, LIMITS)
    assert outcome.ok, outcome
    assert (outcome.kind, outcome.rows, outcome.total_errors, outcome.errors) == ("ok", 25, 0, ())
    assert (outcome.format, outcome.sheet) == ("xlsx", "Sheet1")
    assert outcome.peak_rss_bytes is not None
    assert 10 * 2**20 < outcome.peak_rss_bytes < 1024 * 2**20
    assert 0 < outcome.elapsed_seconds < 30
    with job.spool_path.open("rb") as fh:
        docs = list(bson.decode_file_iter(fh))
    assert [d["row"] for d in docs] == list(range(2, 27))
    assert {d["user_id"] for d in docs} == set(range(1000, 1025))


async def test_ods_is_read_whatever_the_file_name(tmp_path: Path, make_job: Callable[..., ParseJob]) -> None:
    job = make_job(minimal_ods(tmp_path / "upload.bin"))
    outcome = await parse_workbook(job, LIMITS)
    assert (outcome.kind, outcome.format, outcome.rows, outcome.sheet) == ("ok", "ods", 1, "Sales")
    with job.spool_path.open("rb") as fh:
        (doc,) = bson.decode_file_iter(fh, bson.CodecOptions(tz_aware=True))
    assert doc["user_id"] == 42
    assert doc["sub_date"] == datetime(2024, 1, 31, 14, 5, tzinfo=UTC)


async def test_invalid_workbook_lists_errors_and_removes_the_spool(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    rows = valid_rows(5)
    rows[3][1] = "31.02.2024"
    rows += [["x", "", "", "", ""] for _ in range(200)]
    job = make_job(write_xlsx(rows))
    outcome = await parse_workbook(job, LIMITS)
    assert outcome.kind == "invalid"
    assert outcome.total_errors == 1 + 400
    assert len(outcome.errors) == LIMITS.max_listed_errors
    first = outcome.errors[0]
    assert (first.row, first.column, first.cell, first.value, first.code) == (
        4,
        "sub_date",
        "B4",
        "31.02.2024",
        "invalid_date",
    )
    assert outcome.detail == "the file has 401 errors"
    assert not job.spool_path.exists()


async def test_not_a_spreadsheet_never_starts_a_worker(tmp_path: Path, make_job: Callable[..., ParseJob]) -> None:
    path = tmp_path / "sales.xlsx"
    path.write_text("user_id,sub_date\n1,2024-01-01\n")
    outcome = await parse_workbook(make_job(path), LIMITS)
    assert outcome.kind == "unsupported_format"
    assert outcome.peak_rss_bytes is None
    (error,) = outcome.errors
    assert (error.code, error.row, error.cell) == ("unsupported_format", None, None)
    assert outcome.detail == error.message


async def test_far_corner_with_dimension_is_refused_by_sniff(tmp_path: Path, make_job: Callable[..., ParseJob]) -> None:
    outcome = await parse_workbook(make_job(far_corner(tmp_path / "c.xlsx", keep_dimension=True)), LIMITS)
    assert outcome.kind == "sheet_too_large"
    assert outcome.peak_rss_bytes is None


async def test_far_corner_without_dimension_aborts_the_worker_not_us(
    tmp_path: Path, make_job: Callable[..., ParseJob]
) -> None:
    # calamine aborts the process (512 GiB allocation): the runner must turn it into an outcome.
    started = time.monotonic()
    outcome = await parse_workbook(make_job(far_corner(tmp_path / "c.xlsx", keep_dimension=False)), LIMITS)
    assert time.monotonic() - started < 30
    assert outcome.kind == "unreadable_file"
    assert outcome.errors[0].message == "The file could not be read within the memory limit (2 GiB)."
    assert outcome.diagnostic is not None
    assert "SIGABRT" in outcome.diagnostic


async def test_zip_bomb_is_refused(tmp_path: Path, make_job: Callable[..., ParseJob]) -> None:
    outcome = await parse_workbook(make_job(zip_bomb(tmp_path / "bomb.xlsx")), LIMITS)
    assert outcome.kind == "zip_bomb"
    assert outcome.peak_rss_bytes is None


async def test_timeout_kills_the_worker(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    outcome = await parse_workbook(make_job(write_xlsx(valid_rows(3))), ParseLimits(timeout_seconds=0.01))
    assert outcome.kind == "parse_timeout"
    assert outcome.errors[0].message == "The file could not be read within the time limit (0.01 s)."


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("segv", "reader crashed"),
        ("garbage", "reader failed"),
        ("exit", "reader failed"),
        ("wrong-shape", "could not be read"),
        ("memory", "memory limit (2 GiB)"),
    ],
)
async def test_every_worker_failure_becomes_unreadable_file(
    write_xlsx: WriteXlsx,
    make_job: Callable[..., ParseJob],
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    needle: str,
) -> None:
    monkeypatch.setattr(runner, "WORKER_MODULE", "tests.unit.ingest.fake_worker")
    job = make_job(write_xlsx(valid_rows(1)), report_id=mode)
    outcome = await parse_workbook(job, LIMITS)
    assert outcome.kind == "unreadable_file"
    assert needle in outcome.errors[0].message
    assert outcome.total_errors == 1


async def test_cancelling_the_caller_kills_the_worker(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "WORKER_MODULE", "tests.unit.ingest.fake_worker")
    job = make_job(write_xlsx(valid_rows(1)), report_id="sleep")
    task = asyncio.create_task(parse_workbook(job, LIMITS))
    pid_file = job.spool_path.with_suffix(".pid")
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        await asyncio.sleep(0.025)
    pid = int(pid_file.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # the child was killed and reaped: no such process any more
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_limits_from_settings() -> None:
    from shared.settings import Settings

    settings = Settings(
        parse_timeout_seconds=12.5,
        parse_memory_bytes=3 * 2**30,
        max_rows=10,
        max_columns=20,
        max_uncompressed_bytes=999,
        max_compression_ratio=50.0,
        max_listed_errors=7,
    )
    assert ParseLimits.from_settings(settings) == ParseLimits(
        timeout_seconds=12.5,
        memory_bytes=3 * 2**30,
        max_rows=10,
        max_columns=20,
        max_uncompressed_bytes=999,
        max_compression_ratio=50.0,
        max_listed_errors=7,
    )


def test_job_accepts_str_paths_and_refuses_unknown_zones(tmp_path: Path) -> None:
    job = ParseJob(str(tmp_path / "a.xlsx"), str(tmp_path / "a.spool"), "r", "s", 1, 1, "Europe/Moscow")  # type: ignore[arg-type]
    assert job.path == tmp_path / "a.xlsx"
    assert isinstance(job.spool_path, Path)
    with pytest.raises(ValueError, match="unknown time zone"):
        ParseJob(tmp_path / "a.xlsx", tmp_path / "a.spool", "r", "s", 1, 1, "Mars/Base")
