"""The parse worker's column-wise path, and how its output leaves the worker.

`run_columnar(job, path, fmt)` parses a plain workbook column-wise (columnar.py) and either
spools its row documents (`spool_path`, the format `parse_workbook` has always had) or, when the
job says `stream`, streams its stored chunks through the pipe the runner gave the worker at spawn
(its fd is in SALESWIRE_PARSE_PIPE_FD) while it builds them. It answers None for every file it
does not decide (columnar.py's docstring says which): the worker then parses the file with
calamine and the row validator as before, and `stream_spool` sends that path's spool down the
pipe as chunks, so the parent sees one protocol.

Streaming protocol (stdout lines are JSON; the pipe carries concatenated BSON chunk documents):
  1. stdout {"verdict": true, "ok": true, "rows": N, "sheet": ...}  — every row is valid; the
     parent accepts the file (what the gateway's 200 waits for) and goes on storing its chunks;
  2. the chunks, then the listing documents of the statuses that get one (shared/sale_listing.py,
     stored beside the chunks), then the pipe is closed;
  3. stdout the final answer, with "totals" (shared.totals document, JSON-safe) on success.
A file read whole sends its chunks only after its verdict; a file with errors then writes nothing
to the pipe, its verdict is the final answer alone. A large file read in parts (`stream_segments`)
sends each part's chunks as soon as they are built, before its verdict, through a spill file (so
that the verdict never waits for the parent's inserts); if it turns out to need the old path, the
pipe gets `answer.DISCARD` (the parent removes what it stored) and the old path goes on as above.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, Final

import bson

from services.ingest.excel import columnar
from services.ingest.excel.answer import DISCARD, totals_field
from services.ingest.excel.converters import load_zone
from services.ingest.excel.segments import SEGMENT_BYTES, NotPlain, open_segmented
from services.ingest.excel.types import CellError
from shared.currency import DEFAULT_CURRENCY
from shared.sale_chunks import ChunkPacker
from shared.sale_listing import ListingCollector
from shared.totals import TotalsFold

PIPE_WRITE_BYTES: Final = 1024 * 1024


def new_fold(job: dict[str, Any]) -> TotalsFold:
    """The fold ingest always used for a file: the report's currency for rows without one, and the
    file as the report's first source (its rows' file order is the report's)."""
    return TotalsFold(job.get("currency") or DEFAULT_CURRENCY, {job["source_report_id"]: 0})


class SharingFold:
    """`new_fold` fed with decoded rows whose repeated strings are one object each.

    The fold keeps every user's first-touch source and invite link; decoded from BSON, each row
    brings its own copy of both, so half a million users would keep a million strings that say
    the same few things, and the worker's RSS ends the fold near its peak (docs/benchmarks.md,
    "Parsing", 2026-12-02)."""

    def __init__(self, job: dict[str, Any]) -> None:
        self.fold = new_fold(job)
        self.source: str = job["source_report_id"]
        self.links: dict[str, str] = {}

    def add_all(self, rows: Iterable[dict[str, Any]]) -> None:
        add, source, links = self.fold.add, self.source, self.links
        for row in rows:
            if row.get("source_report_id") == source:
                row["source_report_id"] = source
            link = row.get("invite_link")
            if link is not None:
                row["invite_link"] = links.setdefault(link, link)
            add(row)


def fold_chunk(chunk: bytes, fold: SharingFold, listings: ListingCollector) -> None:
    """One stored chunk (BSON) into the file's totals and its status's listing."""
    doc = bson.decode(chunk)
    fold.add_all(doc["rows"])
    listings.add(chunk, doc["status"], len(doc["rows"]))


def say(answer: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()


class PipeWriter:
    """Buffered writes of whole documents to the stream pipe (blocks while the parent stores:
    that is the back-pressure that bounds the worker's memory)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer: list[bytes | memoryview] = []
        self.size = 0

    def write(self, data: bytes | memoryview) -> None:
        self.buffer.append(data)
        self.size += len(data)
        if self.size >= PIPE_WRITE_BYTES:
            self.flush()

    def write_all(self, docs: Iterable[bytes]) -> None:
        for doc in docs:
            self.write(doc)

    def flush(self) -> None:
        if self.buffer:
            data = memoryview(b"".join(self.buffer))
            while data:
                written = os.write(self.fd, data)
                data = data[written:]
        self.buffer.clear()
        self.size = 0

    def close(self) -> None:
        self.flush()
        os.close(self.fd)


def stream_fd(job: dict[str, Any]) -> int | None:
    """The chunk pipe of a streaming job: the runner passes its write end to the worker at spawn
    (possibly before the job exists: a spare worker), and names it in the environment."""
    if not job.get("stream"):
        return None
    return int(os.environ["SALESWIRE_PARSE_PIPE_FD"])


def run_columnar(job: dict[str, Any], path: Path, fmt: str) -> dict[str, Any] | None:
    """The worker's answer for a file decided column-wise, or None (parse it the old way)."""
    fd = stream_fd(job)
    if fd is not None:
        answer = stream_segments(job, path, fmt, fd)
        if answer is not None:
            return answer
    try:
        sheet = columnar.read_sheet(path, fmt)
    except MemoryError:
        raise
    except Exception:
        # A damaged file: the old path reads it again and words the error as it always has.
        return None
    if sheet is None:
        return None
    # The caps, worded as the old path words them from calamine's used range (the header is row
    # 1, the columns start at `col_offset`): a sheet this large is not read a second time.
    rows, columns = sheet.table.num_rows + 1, sheet.col_offset + sheet.table.num_columns
    if rows > job["max_rows"] + 1 or columns > job["max_columns"]:
        error = CellError(
            sheet=sheet.name,
            row=None,
            column=None,
            cell=None,
            value=None,
            code="sheet_too_large",
            message=f"The first sheet spans {rows} rows and {columns} columns; at most {job['max_rows']} "
            f"data rows and {job['max_columns']} columns are accepted.",
        )
        return {
            "ok": False,
            "kind": "sheet_too_large",
            "total_errors": 1,
            "errors": [error.to_dict()],
            "sheet": sheet.name,
        }
    valid = columnar.validate_sheet(sheet, job, load_zone(job.get("timezone") or "UTC"))
    del sheet
    if valid is None:
        return None
    fd = stream_fd(job)
    if fd is None:
        with open(job["spool_path"], "wb") as spool:
            for docs in columnar.row_batches(valid):
                spool.write(columnar.documents_buffer(docs))
        return {"ok": True, "rows": valid.rows, "sheet": valid.sheet}
    say({"verdict": True, "ok": True, "rows": valid.rows, "sheet": valid.sheet})
    pipe = PipeWriter(fd)
    # The totals (currencies, first touches, links: shared.totals) are folded from the built rows,
    # while the parent stores what was just written, on this process's own core.
    fold = SharingFold(job)
    listings = ListingCollector()
    for chunks in columnar.chunk_batches(valid):
        pipe.write_all(chunks)
        for chunk in chunks:
            fold_chunk(chunk, fold, listings)
    # The listing documents go last, once their status's every chunk is written (shared.sale_listing).
    pipe.write_all(listings.documents())
    pipe.close()
    totals = fold.fold.result()
    return {"ok": True, "rows": valid.rows, "sheet": valid.sheet, "reader": "columnar", "totals": totals_field(totals)}


class SpillPump:
    """The stream pipe behind a file: what the worker writes is appended to `path` and a thread
    sends it down the pipe as fast as the parent takes it.

    Why: read in parts (segments.py), the file's chunks exist long before the parent has stored
    them (storing is the slower side). Blocking on the pipe would hold the parse back, and with it
    the verdict the gateway's 200 waits for; keeping the backlog in memory would grow the worker
    by the file's whole BSON. On disk (the page cache) it costs neither."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd = fd
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 - closed in drain()
        self.pending = 0
        self.written = 0
        self.ended = False
        self.error: BaseException | None = None
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._send, name="spill-pump", daemon=True)
        self.thread.start()

    def write(self, data: bytes | memoryview) -> None:
        self.file.write(data)
        self.pending += len(data)
        if self.pending >= PIPE_WRITE_BYTES:
            self.publish()

    def write_all(self, docs: Iterable[bytes]) -> None:
        for doc in docs:
            self.write(doc)

    def publish(self) -> None:
        """Makes what was written so far the thread's to send."""
        self.file.flush()
        with self.cond:
            self.written += self.pending
            self.cond.notify()
        self.pending = 0
        if self.error is not None:
            raise self.error

    def drain(self) -> None:
        """Waits until everything written is in the pipe (the fd stays open)."""
        self.publish()
        with self.cond:
            self.ended = True
            self.cond.notify()
        self.thread.join()
        self.file.close()
        if self.error is not None:
            raise self.error

    def _send(self) -> None:
        try:
            with open(self.path, "rb") as spill:
                sent = 0
                while True:
                    with self.cond:
                        while self.written == sent and not self.ended:
                            self.cond.wait()
                        target, ended = self.written, self.ended
                    while sent < target:
                        data = memoryview(spill.read(min(PIPE_WRITE_BYTES * 4, target - sent)))
                        sent += len(data)
                        while data:
                            data = data[os.write(self.fd, data) :]
                    if ended and sent == self.written:
                        return
        except BaseException as exc:  # the parent went away: the worker's write fails next
            self.error = exc


def stream_segments(job: dict[str, Any], path: Path, fmt: str, fd: int) -> dict[str, Any] | None:
    """A large plain workbook read, checked and built part by part (segments.py), its chunks
    streamed as each part is done, before the whole file is judged: the parent stores them at
    once and removes them if the file fails. None when the file is not read this way; a file
    that turns out to need the old path (an error, a shape the parts do not take) gets DISCARD
    down the pipe first, so that the parent drops what it stored, and None."""
    zone = load_zone(job.get("timezone") or "UTC")
    segmented = open_segmented(path, fmt, int(job.get("segment_bytes") or SEGMENT_BYTES))
    if segmented is None or zone is not UTC:
        return None
    pump = SpillPump(fd, Path(str(job["spool_path"]) + ".chunks"))
    stream = columnar.ChunkStream()
    rows, sheet = 0, segmented.sheet_name
    try:
        for segment in segmented.parts():
            if segment.last_row - 1 > job["max_rows"]:
                raise NotPlain("over the row cap")  # the whole path words that refusal
            sheet = segment.sheet.name
            if segment.sheet.table.num_rows == 0:
                continue
            valid = columnar.validate_sheet(segment.sheet, job, zone, first_row=segment.first_row)
            del segment
            if valid is None:
                raise NotPlain("an error or an unusual cell")
            rows += valid.rows
            for chunks in stream.add(valid, final=False):
                pump.write_all(chunks)
            del valid
        if rows == 0:
            raise NotPlain("no data rows")
    except MemoryError:
        raise
    except Exception as exc:  # NotPlain, or what the reader raises: the old path decides the file
        # Not an error of the file's (the other path words those): a note for the diagnostic.
        print(f"segmented read given up: {exc!r}", file=sys.stderr)
        if pump.written or pump.pending:
            pump.write(DISCARD)
        pump.drain()
        return None
    for chunks in stream.flush():
        pump.write_all(chunks)
    say({"verdict": True, "ok": True, "rows": rows, "sheet": sheet})
    # The totals and the listings from the chunks as written (read back from the page cache), while
    # the parent stores them: after the verdict, so that the 200 does not wait for the fold.
    pump.publish()
    fold = SharingFold(job)
    listings = ListingCollector()
    with open(pump.path, "rb") as written:
        while head := written.read(4):
            fold_chunk(head + written.read(int.from_bytes(head, "little") - 4), fold, listings)
    pump.write_all(listings.documents())
    pump.drain()
    os.close(fd)
    return {"ok": True, "rows": rows, "sheet": sheet, "reader": "segments", "totals": totals_field(fold.fold.result())}


def stream_spool(job: dict[str, Any], answer: dict[str, Any]) -> dict[str, Any]:
    """The old path's valid spool, sent down the stream pipe as chunks (stream jobs only)."""
    fd = stream_fd(job)
    if fd is None or answer.get("ok") is not True:
        return answer
    say({"verdict": True, "ok": True, "rows": answer["rows"], "sheet": answer.get("sheet")})
    pipe = PipeWriter(fd)
    packer = ChunkPacker()
    fold = SharingFold(job)
    listings = ListingCollector()

    def encoded(chunks: list[dict[str, Any]]) -> Iterator[bytes]:
        for chunk in chunks:
            data = bson.encode(chunk)
            listings.add(data, chunk["status"], len(chunk["rows"]))
            yield data

    batch: list[dict[str, Any]] = []
    with open(job["spool_path"], "rb") as spool:
        for row in bson.decode_file_iter(spool):
            fold.add_all((row,))
            batch.append(row)
            if len(batch) >= 5_000:
                pipe.write_all(encoded(packer.add(batch)))
                batch = []
    pipe.write_all(encoded(packer.add(batch)))
    pipe.write_all(encoded(packer.flush()))
    pipe.write_all(listings.documents())
    pipe.close()
    return {**answer, "reader": "rows", "totals": totals_field(fold.fold.result())}
