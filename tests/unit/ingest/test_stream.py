"""stream_workbook end to end: the real worker process streams its chunks through the pipe."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bson
import pytest

from services.ingest.excel import ParseJob, ParseLimits, parse_workbook
from services.ingest.excel.answer import totals_field, totals_from_field
from services.ingest.excel.bulk import new_fold
from services.ingest.excel.stream import stream_workbook
from shared.sale_chunks import pack
from shared.sale_listing import build_listings
from tests.unit.ingest.conftest import WriteXlsx

LIMITS = ParseLimits(timeout_seconds=60, memory_bytes=2 * 1024**3)


def rows(n: int, *, text_ids: bool = False) -> list[list[Any]]:
    header = ["user_id", "sub_date", "status", "action_date", "purchase_amount", "is_premium"]
    statuses = [None, "lead", "sale", "funnel"]
    out: list[list[Any]] = [header]
    for i in range(n):
        status = statuses[i % 4]
        out.append(
            [
                str(1000 + i % 97) if text_ids and i % 2 else float(1000 + i % 97),
                "2024-01-01 10:00",
                status,
                "2024-01-02" if status else None,
                10.5 + i if status == "sale" else None,
                i % 5 == 0,
            ]
        )
    return out


class Store:
    def __init__(self) -> None:
        self.batches: list[list[Any]] = []
        self.accepted: list[int] = []

    async def store(self, batch: list[Any]) -> None:
        self.batches.append(batch)

    async def accept(self, rows: int) -> None:
        assert not self.batches, "the verdict comes before any chunk"
        self.accepted.append(rows)

    def chunks(self) -> dict[str, bytes]:
        return {c["_id"]: c.raw for batch in self.batches for c in batch}


@pytest.mark.parametrize("text_ids", [False, True], ids=["columnar", "rows"])
async def test_chunks_and_totals_are_those_of_the_spooled_rows(
    text_ids: bool, write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    # Text among number ids makes a column of two types: the old path, streamed from its spool.
    path = write_xlsx(rows(1234, text_ids=text_ids))
    spooled = make_job(path, spool_path=tmp_path / "spool.bson")
    assert (await parse_workbook(spooled, LIMITS)).ok
    with spooled.spool_path.open("rb") as fh:
        docs = list(bson.decode_file_iter(fh))
    sink = Store()
    result = await stream_workbook(
        make_job(path, spool_path=tmp_path / "scratch.bson"),
        LIMITS,
        store=sink.store,
        accepted=sink.accept,
        batch_chunks=3,
    )
    assert result.outcome.ok, result.outcome
    assert result.reader == ("rows" if text_ids else "columnar")
    assert result.outcome.rows == 1234 and sink.accepted == [1234]
    # The chunks, and the listing documents of their statuses (shared.sale_listing), last.
    chunks = pack(docs)
    listings = build_listings(chunks)
    assert {d["status"] for d in listings} == {"sale", "lead", "funnel"} & {c["status"] for c in chunks}
    assert sink.chunks() == {c["_id"]: bson.encode(c) for c in [*chunks, *listings]}
    assert list(sink.chunks())[-len(listings) :] == [d["_id"] for d in listings]
    assert result.chunks == len(sink.chunks())
    assert all(len(batch) <= 3 for batch in sink.batches)
    fold = new_fold({"currency": None, "source_report_id": "src1"})
    for doc in docs:
        fold.add(doc)
    # Through the same transport (shared.totals' document), which the parent stores again.
    assert result.totals == totals_from_field(totals_field(fold.result()))
    assert {"sniffed", "spawned", "verdict", "first_chunk", "stored"} <= set(result.timeline)


async def test_a_file_with_errors_streams_nothing(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    data = rows(300)
    data[250][1] = "31.02.2024"
    path = write_xlsx(data)
    expected = await parse_workbook(make_job(path, spool_path=tmp_path / "a.bson"), LIMITS)
    sink = Store()
    result = await stream_workbook(make_job(path), LIMITS, store=sink.store, accepted=sink.accept)
    assert result.outcome.kind == "invalid"
    assert result.outcome.errors == expected.errors and result.outcome.total_errors == expected.total_errors
    assert sink.batches == [] and sink.accepted == [] and result.totals is None


async def test_inserts_overlap_up_to_the_bound_and_a_failed_one_fails_the_file(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    path = write_xlsx(rows(1234))
    in_flight, most, stored = [0], [0], []

    async def slow(batch: list[Any]) -> None:
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.05)
        stored.extend(batch)
        in_flight[0] -= 1

    sink = Store()
    result = await stream_workbook(
        make_job(path), LIMITS, store=slow, accepted=sink.accept, batch_chunks=1, inserts_in_flight=3
    )
    assert result.outcome.ok, result.outcome
    # Every chunk stored, never more than three inserts at once, and they did overlap.
    assert len(stored) == result.chunks and len({c["_id"] for c in stored}) == result.chunks
    assert most[0] == 3

    async def broken(batch: list[Any]) -> None:
        raise RuntimeError("insert refused")

    with pytest.raises(RuntimeError, match="insert refused"):
        await stream_workbook(make_job(path), LIMITS, store=broken, accepted=sink.accept, batch_chunks=1)


async def test_a_stalled_store_is_cut_by_the_parse_timeout(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    sink = Store()

    async def stalled(batch: list[Any]) -> None:
        await asyncio.sleep(3600)

    result = await stream_workbook(
        make_job(write_xlsx(rows(500))),
        ParseLimits(timeout_seconds=3, memory_bytes=2 * 1024**3),
        store=stalled,
        accepted=sink.accept,
        batch_chunks=1,
    )
    assert result.outcome.kind == "parse_timeout"
    assert result.totals is None
    # Under load the worker may not even reach its verdict in 3 s; either way nothing is left running.
    assert sink.accepted in ([], [500])


async def test_a_spare_worker_takes_the_next_file_and_is_replaced(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    from services.ingest.excel.stream import SpareWorker

    spare = SpareWorker()
    spare.refill()
    path = write_xlsx(rows(40))
    for _ in range(2):
        waiting = spare._starting
        assert waiting is not None
        await waiting
        ready = spare._ready
        assert ready is not None and ready[0].returncode is None  # started, waiting for its job
        sink = Store()
        result = await stream_workbook(make_job(path), LIMITS, store=sink.store, accepted=sink.accept, spare=spare)
        assert result.outcome.ok and result.outcome.rows == 40
        assert ready[0].returncode == 0  # that very process parsed the file, then exited
    await spare.close()
    assert spare._ready is None and spare._starting is None


def test_the_worker_folds_one_string_per_distinct_source_and_link() -> None:
    from datetime import UTC, datetime

    from services.ingest.excel.bulk import SharingFold

    job = {"currency": None, "source_report_id": "src1"}
    # Equal strings that are distinct objects, as bson.decode hands them over row after row.
    rows = [
        {
            "_id": f"src1:{i + 2}",
            "source": "excel",
            "source_report_id": "".join(["src", "1"]),
            "row": i + 2,
            "user_id": 1000 + i % 7,
            "status": "sale" if i % 3 == 0 else None,
            "purchase_amount": bson.Decimal128("10.50") if i % 3 == 0 else None,
            "sub_date": datetime(2024, 1, 1 + i % 20, tzinfo=UTC),
            "invite_link": "".join(["https://t.me/+inv", str(i % 2)]) if i % 5 else None,
        }
        for i in range(60)
    ]
    plain = new_fold(job)
    for row in rows:
        plain.add(dict(row))
    shared = [dict(row) for row in rows]
    sharing = SharingFold(job)
    sharing.add_all(shared)
    assert sharing.fold.result() == plain.result()
    assert len({id(row["source_report_id"]) for row in shared}) == 1
    links = {row["invite_link"]: id(row["invite_link"]) for row in shared if row["invite_link"] is not None}
    assert len(links) == 2 and len({id(row["invite_link"]) for row in shared if row["invite_link"]}) == 2
