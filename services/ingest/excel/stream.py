"""`stream_workbook`: parse in the capped worker and store its chunks while it is still building
later ones (instead of spooling every row, then reading the spool back and packing it).

Same protections as `parse_workbook` (runner.py): the sniff in this process, the worker under its
memory limit and, for the whole run, the parse timeout, its crash turned into an outcome. What
changes is what leaves the worker: once every row has been checked it says so on stdout (the
verdict), then writes the stored chunk documents (shared/sale_chunks.py, already packed and
BSON-encoded) to a pipe, which this side reads in batches and hands to `store`; the worker's
final answer carries the file's totals (shared/totals.py). A file with errors sends no chunk. A
worker that dies after its verdict leaves an outcome that is not ok: the caller removes what was
stored (the chunks have deterministic ids, so a redelivered command stores nothing twice either).

A large workbook is read in parts (segments.py): its chunks come before the verdict, so storing
starts after the first part instead of after the whole parse. Such chunks are stored at once as
well; the file is not accepted until its verdict, analytics does not count an Excel source before
it, and a file that fails removes them (the worker's DISCARD note, or the rejection).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final

from bson.raw_bson import RawBSONDocument

from services.ingest.excel.answer import DISCARD, totals_from_field
from services.ingest.excel.runner import (
    _file_outcome,
    _interpret,
    _watch_rss,
    finished_fields,
    refused_by_sniff,
    sniff_failed,
    start_worker,
    stop_worker,
    timed_out,
    worker_job,
)
from services.ingest.excel.sniff import sniff
from services.ingest.excel.types import ParseJob, ParseLimits, ParseOutcome
from shared.totals import Totals

READ_BYTES: Final = 1024 * 1024
# Chunks per insert_many and how many may be in flight at once. One: two or four in flight, or
# batches of 200, stored the same chunks no faster (docs/benchmarks.md, "Pipeline", 2026-12-02:
# SecantusDB takes one batch of a collection at a time), and each costs the service a batch of memory.
STORE_BATCH_CHUNKS: Final = 50
INSERTS_IN_FLIGHT: Final = 1

# Takes a batch of RawBSONDocument chunks (the driver sends their bytes as they are).
Store = Callable[[list[Any]], Awaitable[Any]]
Accepted = Callable[[int], Awaitable[Any]]
# Removes every chunk of the file stored so far (the worker reads it again another way).
Discard = Callable[[], Awaitable[Any]]


async def _no_discard() -> None:
    raise RuntimeError("the worker discarded streamed chunks, and this caller cannot remove them")


class SpareWorker:
    """One parse worker started before it is needed, so that a small upload does not wait for a
    Python start and the worker's imports (most of a 10 000-row file's parse: docs/benchmarks.md,
    "parsing and storing overlap", small uploads).

    Still one process per file, with the same caps: the spare has only imported its modules and
    waits for its job on stdin; the memory limit is set once the job arrives, before any reader is
    imported, and the parse timeout runs from the moment the job is handed over. The next spare is
    started only after a file is done, so no idle worker sits beside a large parse."""

    def __init__(self) -> None:
        self._ready: tuple[asyncio.subprocess.Process, int] | None = None
        self._starting: asyncio.Task[None] | None = None

    async def take(self) -> tuple[asyncio.subprocess.Process, int]:
        """A started worker and the read end of its chunk pipe (its write end is fd `pipe_fd`)."""
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
            self._starting = None
        ready, self._ready = self._ready, None
        if ready is not None and ready[0].returncode is None:
            return ready
        if ready is not None:
            os.close(ready[1])
        return await _spawn()

    def refill(self) -> None:
        if self._ready is None and self._starting is None:
            self._starting = asyncio.ensure_future(self._start())

    async def _start(self) -> None:
        self._ready = await _spawn()

    async def close(self) -> None:
        if self._starting is not None:
            with contextlib.suppress(Exception):
                await self._starting
            self._starting = None
        if self._ready is not None:
            proc, fd = self._ready
            self._ready = None
            os.close(fd)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()


async def _spawn() -> tuple[asyncio.subprocess.Process, int]:
    read_fd, write_fd = os.pipe()
    try:
        proc = await start_worker({"SALESWIRE_PARSE_PIPE_FD": str(write_fd)}, pass_fds=(write_fd,))
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    return proc, read_fd


@dataclass
class StreamResult:
    outcome: ParseOutcome
    totals: Totals | None = None
    # Seconds since the call, by step: sniffed, spawned, verdict, first_chunk, parsed, stored.
    timeline: dict[str, float] = field(default_factory=dict)
    chunks: int = 0
    # Which path decided the file: "columnar" (bulk.py) or "rows" (calamine + RowValidator).
    reader: str | None = None


async def stream_workbook(
    job: ParseJob,
    limits: ParseLimits,
    *,
    store: Store,
    accepted: Accepted,
    discard: Discard = _no_discard,
    batch_chunks: int = STORE_BATCH_CHUNKS,
    inserts_in_flight: int = INSERTS_IN_FLIGHT,
    spare: SpareWorker | None = None,
) -> StreamResult:
    started = time.monotonic()
    timeline: dict[str, float] = {}

    def mark(step: str) -> None:
        timeline[step] = round(time.monotonic() - started, 3)

    try:
        found = await asyncio.to_thread(sniff, job.path, limits)
    except Exception as exc:
        return StreamResult(sniff_failed(exc, started), timeline=timeline)
    mark("sniffed")
    if found.format is None:
        return StreamResult(refused_by_sniff(found, started), timeline=timeline)
    proc, read_fd = await (spare.take() if spare is not None else _spawn())
    payload = worker_job(job, limits, found.format, stream=True)
    mark("spawned")
    peak = [0]
    watcher = asyncio.create_task(_watch_rss(proc.pid, peak))
    lines: list[bytes] = []
    stderr = bytearray()
    counted = [0]

    async def read_stdout() -> None:
        assert proc.stdout is not None
        async for line in proc.stdout:
            lines.append(line)
            answer = _json(line)
            if answer is not None and answer.get("verdict") is True:
                mark("verdict")
                await accepted(int(answer.get("rows") or 0))

    async def read_stderr() -> None:
        assert proc.stderr is not None
        stderr.extend(await proc.stderr.read())

    async def read_chunks() -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=READ_BYTES)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        pending: set[asyncio.Future[Any]] = set()
        batch: list[RawBSONDocument] = []

        async def settle(at_most: int) -> None:
            # Waits until at most `at_most` inserts are in flight; a failed insert fails the file.
            while len(pending) > at_most:
                done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                pending.difference_update(done)
                # Every failure is retrieved (asyncio logs the others otherwise); the first is raised.
                failures = [error for task in done if (error := task.exception()) is not None]
                if failures:
                    raise failures[0]

        try:
            while True:
                head = await reader.read(4)
                if not head:
                    break
                if len(head) < 4:
                    try:
                        head += await reader.readexactly(4 - len(head))
                    except asyncio.IncompleteReadError:
                        break
                size = int.from_bytes(head, "little")
                try:
                    body = await reader.readexactly(size - 4)
                except asyncio.IncompleteReadError:
                    break  # the worker died mid-chunk: its outcome says so, the part is dropped
                if size == len(DISCARD) and head + body == DISCARD:
                    # What was streamed before the worker gave up reading in parts goes; what the
                    # other path streams next is stored afresh.
                    batch = []
                    await settle(0)
                    await discard()
                    continue
                batch.append(RawBSONDocument(head + body))
                if counted[0] == 0 and len(batch) == 1:
                    mark("first_chunk")
                if len(batch) >= batch_chunks:
                    # The next batch is read from the worker while up to `inserts_in_flight` are stored.
                    await settle(inserts_in_flight - 1)
                    counted[0] += len(batch)
                    pending.add(asyncio.ensure_future(store(batch)))
                    batch = []
            if batch:
                counted[0] += len(batch)
                pending.add(asyncio.ensure_future(store(batch)))
            await settle(0)
        finally:
            for task in pending:
                if not task.done():
                    task.cancel()
                elif not task.cancelled():
                    task.exception()  # failed beside the one raised: retrieved, not logged
            transport.close()

    assert proc.stdin is not None
    proc.stdin.write(payload)
    proc.stdin.close()
    out_of_time = False
    tasks = [asyncio.ensure_future(t) for t in (read_stdout(), read_stderr(), read_chunks())]
    try:
        try:
            async with asyncio.timeout(limits.timeout_seconds):
                await asyncio.gather(*tasks)
                await proc.wait()
        except TimeoutError:
            out_of_time = True
    finally:
        watcher.cancel()
        for task in tasks:
            task.cancel()
        await stop_worker(proc)
        if spare is not None:
            spare.refill()
    mark("stored")
    common = finished_fields(found, started, peak[0])
    if out_of_time:
        return StreamResult(timed_out(limits, common), timeline=timeline, chunks=counted[0])
    stdout = b"".join(lines)
    outcome = _interpret(proc.returncode, stdout, bytes(stderr), limits, common)
    final = _json(lines[-1]) if lines else None
    totals = None
    if outcome.ok:
        raw = final.get("totals") if final else None
        if not isinstance(raw, str):
            outcome = _file_outcome(
                "unreadable_file", "The file could not be read.", diagnostic="worker sent no totals", **common
            )
        else:
            totals = totals_from_field(raw)
    reader = final.get("reader") if final else None
    return StreamResult(
        outcome, totals=totals, timeline=timeline, chunks=counted[0], reader=reader if isinstance(reader, str) else None
    )


def _json(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
