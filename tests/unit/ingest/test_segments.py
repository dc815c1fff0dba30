"""A large sheet read in parts (segments.py, bulk.stream_segments): the same chunks, listings and
totals as the whole sheet gives, chunks on the pipe before the verdict, and a file that turns out
to need the old path (an error, an odd shape) gets the old path's very answer after its streamed
chunks are discarded."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import pytest

from services.ingest.excel import ParseJob, ParseLimits, parse_workbook
from services.ingest.excel.answer import DISCARD, totals_from_field
from services.ingest.excel.bulk import new_fold, stream_segments
from services.ingest.excel.segments import open_segmented
from services.ingest.excel.stream import stream_workbook
from services.ingest.excel.worker import run_job
from shared.sale_chunks import pack
from shared.sale_listing import build_listings
from tests.reliability.campaign import xlsx_parts
from tests.unit.ingest.conftest import ENGLISH_HEADER, WriteXlsx
from tests.unit.ingest.test_columnar import HEADER, as_text, random_rows, raw_docs
from tests.unit.ingest.test_worker import job_dict

# A few rows' XML per part: these workbooks are cut into tens of parts.
PART_BYTES = 4096


class Pipe:
    """The read side of the worker's chunk pipe, drained by a thread (as the parent drains it)."""

    def __init__(self) -> None:
        self.read_fd, self.write_fd = os.pipe()
        self.data = bytearray()
        self.thread = threading.Thread(target=self._drain)
        self.thread.start()

    def _drain(self) -> None:
        while chunk := os.read(self.read_fd, 1 << 16):
            self.data.extend(chunk)
        os.close(self.read_fd)

    def documents(self, *, close: bool) -> list[bytes]:
        if close:
            os.close(self.write_fd)
        self.thread.join()
        out, at = [], 0
        while at < len(self.data):
            size = int.from_bytes(self.data[at : at + 4], "little")
            out.append(bytes(self.data[at : at + size]))
            at += size
        return out


def whole_sheet(job: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The old path's row documents and answer for the job's file."""
    old = run_job({**job, "stream": False, "spool_path": job["spool_path"] + ".old"}, columnar=False)
    docs = (
        [
            bson.decode(d, codec_options=bson.CodecOptions(tz_aware=True))
            for d in raw_docs(Path(job["spool_path"] + ".old"))
        ]
        if old["ok"]
        else []
    )
    return docs, old


@pytest.mark.parametrize("seed", range(8))
def test_parts_give_the_chunks_listings_and_totals_of_the_whole_sheet(
    seed: int, write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    rnd = random.Random(seed)
    rows = random_rows(rnd, 400, slow=seed % 2 == 1, errors=False)
    if seed >= 4:
        rows = as_text(rnd, rows)  # dates, amounts, flags and ids as text: through the converters
    path = write_xlsx(rows)
    job = job_dict(make_job(path), stream=True, segment_bytes=PART_BYTES)
    segmented = open_segmented(path, "xlsx", PART_BYTES)
    assert segmented is not None and len(list(segmented.parts())) > 5
    docs, old = whole_sheet(job)
    pipe = Pipe()
    answer = stream_segments(job, path, "xlsx", pipe.write_fd)
    got = pipe.documents(close=answer is None)
    if not old["ok"]:
        # A rare random cell the row validator refuses: the file is the old path's to answer.
        assert answer is None and (got == [] or got[-1] == DISCARD)
        return
    assert answer is not None and answer["reader"] == "segments", answer
    assert answer["rows"] == old["rows"] == len(docs)
    chunks = pack(docs)
    listings = build_listings(chunks)
    expected = [bson.encode(c) for c in chunks]
    assert sorted(got[: len(expected)]) == sorted(expected)
    # The listings last (their statuses in the order the statuses' first chunks came).
    assert sorted(got[len(expected) :]) == sorted(bson.encode(d) for d in listings)
    fold = new_fold(job)
    for doc in docs:
        fold.add(doc)
    assert totals_from_field(answer["totals"]) == fold.result()


def test_a_late_error_discards_what_was_streamed_and_answers_as_the_old_path(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    rows = random_rows(random.Random(1), 400, slow=False, errors=False)
    rows[-5][ENGLISH_HEADER.index("status")] = "maybe"  # an unknown status near the end
    path = write_xlsx(rows)
    job = job_dict(make_job(path), stream=True, segment_bytes=PART_BYTES)
    _, old = whole_sheet(job)
    assert old["ok"] is False and old["errors"][0]["code"] == "invalid_status"

    pipe = Pipe()
    assert stream_segments(job, path, "xlsx", pipe.write_fd) is None
    got = pipe.documents(close=True)
    # Chunks of the parts before the bad one went out, then the note that discards them.
    assert len(got) > 1 and got[-1] == DISCARD and DISCARD not in got[:-1]
    assert all("seq" in bson.decode(d) for d in got[:-1])
    assert run_job(job, columnar=False) == old


def _sheet(rows: list[str]) -> list[str]:
    header = "".join(f'<c r="{chr(65 + i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(HEADER[:3]))
    return [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>',
        f'<row r="1">{header}</row>',
        *rows,
        "</sheetData></worksheet>",
    ]


def _row(r: int | None, user: int) -> str:
    number = f' r="{r}"' if r is not None else ""
    ref = lambda col: f' r="{col}{r}"' if r is not None else ""  # noqa: E731
    return f'<row{number}><c{ref("A")}><v>{user}</v></c><c{ref("B")} t="inlineStr"><is><t>Name</t></is></c></row>'


@pytest.mark.parametrize(
    "rows",
    [
        [_row(r, r) for r in range(2, 400)] + [_row(3, 9)],  # a row out of order, far below
        [_row(None, r) for r in range(2, 400)],  # rows without numbers
    ],
    ids=["out-of-order", "unnumbered"],
)
def test_sheets_not_of_the_plain_shape_are_read_whole(
    rows: list[str], tmp_path: Path, make_job: Callable[..., ParseJob]
) -> None:
    path = tmp_path / "odd.xlsx"
    path.write_bytes(xlsx_parts(_sheet(rows)))
    job = job_dict(make_job(path), stream=True, segment_bytes=PART_BYTES)
    pipe = Pipe()
    assert stream_segments(job, path, "xlsx", pipe.write_fd) is None
    got = pipe.documents(close=True)
    assert got == [] or got[-1] == DISCARD


class Store:
    """The parent's side as ingest wires it: stored chunks, the verdict, discards."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.events: list[str] = []

    async def store(self, batch: list[Any]) -> None:
        self.events.append("store")
        for chunk in batch:
            self.stored[chunk["_id"]] = chunk.raw

    async def accept(self, rows: int) -> None:
        self.events.append(f"verdict {rows}")

    async def discard(self) -> None:
        self.events.append("discard")
        self.stored.clear()


async def test_the_worker_streams_parts_before_its_verdict_and_a_bad_file_leaves_nothing(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    limits = ParseLimits(timeout_seconds=60, memory_bytes=2 * 1024**3, segment_bytes=PART_BYTES)
    rows = random_rows(random.Random(5), 600, slow=False, errors=False)
    path = write_xlsx(rows)
    spooled = await parse_workbook(make_job(path, spool_path=tmp_path / "whole.bson"), limits)
    assert spooled.ok
    docs = [bson.decode(d) for d in raw_docs(tmp_path / "whole.bson")]
    chunks = pack(docs)

    sink = Store()
    result = await stream_workbook(
        make_job(path), limits, store=sink.store, accepted=sink.accept, discard=sink.discard, batch_chunks=2
    )
    assert result.outcome.ok and result.reader == "segments", result.outcome
    assert "discard" not in sink.events and sink.events.count(f"verdict {len(docs)}") == 1
    expected = {c["_id"]: bson.encode(c) for c in [*chunks, *build_listings(chunks)]}
    assert sink.stored == expected

    rows[-3][ENGLISH_HEADER.index("sub_date")] = None  # a required date missing near the end
    bad = write_xlsx(rows)
    expected_outcome = await parse_workbook(make_job(bad, spool_path=tmp_path / "bad.bson"), limits)
    sink = Store()
    result = await stream_workbook(
        make_job(bad), limits, store=sink.store, accepted=sink.accept, discard=sink.discard, batch_chunks=2
    )
    assert result.outcome.kind == "invalid"
    assert result.outcome.errors == expected_outcome.errors
    assert result.outcome.total_errors == expected_outcome.total_errors
    assert (
        sink.events[0] == "store"
        and sink.events[-1] == "discard"
        and not any(e.startswith("verdict") for e in sink.events)
    )
    assert sink.stored == {}


def test_the_verdict_does_not_wait_for_the_parent_to_take_the_chunks(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], capfd: pytest.CaptureFixture[str]
) -> None:
    rows = random_rows(random.Random(9), 800, slow=False, errors=False)
    path = write_xlsx(rows)
    job = job_dict(make_job(path), stream=True, segment_bytes=PART_BYTES)
    read_fd, write_fd = os.pipe()
    answers: list[dict[str, Any] | None] = []
    worker = threading.Thread(target=lambda: answers.append(stream_segments(job, path, "xlsx", write_fd)))
    worker.start()
    # Nobody reads the pipe yet (the parent is busy storing): the verdict comes all the same.
    out = ""
    for _ in range(200):
        out += capfd.readouterr().out
        if '"verdict": true' in out:
            break
        worker.join(0.05)
    assert '"verdict": true' in out
    assert worker.is_alive(), "the rest waits for the pipe"
    data = bytearray()
    while chunk := os.read(read_fd, 1 << 16):
        data.extend(chunk)
    worker.join()
    os.close(read_fd)
    assert answers and answers[0] is not None and answers[0]["ok"] is True
    assert len(data) > 1 << 16, "more than the pipe holds was waiting"
