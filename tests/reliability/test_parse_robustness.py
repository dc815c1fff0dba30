"""The parser entry point itself, fed damaged workbooks in-process: whatever the bytes, it must
return an outcome (a 409/415 for that file), never raise. An exception here escapes the ingest
handler, the upload command is retried and dead-lettered, the gateway answers 200 "pending" after
validation_wait_seconds, and the report stays "processing" forever."""

from __future__ import annotations

import io
import random
import zipfile
from pathlib import Path

import pytest

from services.ingest.excel import ParseJob, ParseLimits, parse_workbook
from shared.settings import Settings
from tests.reliability.hostile import flipped_bytes, valid_workbook

LIMITS = ParseLimits.from_settings(Settings(parse_timeout_seconds=60, parse_memory_bytes=2 * 1024**3))


def corrupt_deflate_stream() -> bytes:
    """A valid workbook whose compressed workbook.xml.rels stream is damaged (zlib error -3)."""
    data = bytearray(valid_workbook())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as zf:
        info = zf.getinfo("xl/_rels/workbook.xml.rels")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start, start + min(info.compress_size, 24)):
        data[i] ^= 0xFF
    return bytes(data)


async def _outcome(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    job = ParseJob(
        path=path, spool_path=tmp_path / "rows.bson", report_id="r", source_report_id="s",
        channel_id=-100, creator_id=1, timezone="UTC",
    )  # fmt: skip
    outcome = await parse_workbook(job, LIMITS)
    return str(outcome.kind)


async def test_a_damaged_deflate_stream_is_a_file_error_not_an_exception(tmp_path: Path) -> None:
    kind = await _outcome(tmp_path, corrupt_deflate_stream())
    assert kind != "ok"


@pytest.mark.parametrize("seed", range(12))
async def test_randomly_damaged_workbooks_never_raise(tmp_path: Path, seed: int) -> None:
    case = flipped_bytes(random.Random(seed))
    kind = await _outcome(tmp_path, case.content)
    assert isinstance(kind, str) and kind
