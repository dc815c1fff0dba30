"""The chunk layout of sale rows (`shared.sale_chunks`): packing and paging, without a database."""

from __future__ import annotations

import bson
import pytest
from bson.raw_bson import RawBSONDocument

from shared.sale_chunks import ChunkPacker, chunk_id, pack, page_of, page_seqs, single

STATUSES = ("sale", None, "lead", "sale", "funnel", "sale", None)


def rows(n: int, source: str = "s") -> list[dict[str, object]]:
    return [
        {"_id": f"{source}:{r}", "source_report_id": source, "report_id": "r", "creator_id": 7, "channel_id": -1,
         "source": "excel", "row": r, "status": STATUSES[r % len(STATUSES)]}
        for r in range(2, n + 2)
    ]  # fmt: skip


def test_chunks_hold_one_status_in_row_order_and_lose_no_row() -> None:
    given = rows(1000)
    chunks = pack(given, chunk_rows=9)
    unpacked = [row for chunk in chunks for row in chunk["rows"]]
    assert sorted(unpacked, key=lambda r: r["row"]) == given
    for chunk in chunks:
        assert {r["status"] for r in chunk["rows"]} == {chunk["status"]}
        assert [r["row"] for r in chunk["rows"]] == sorted(r["row"] for r in chunk["rows"])
        assert chunk["_id"] == chunk_id("s", chunk["status"], chunk["seq"])
        assert (chunk["creator_id"], chunk["report_id"], chunk["source"]) == (7, "r", "excel")
    by_status: dict[object, list[int]] = {}
    for chunk in chunks:
        by_status.setdefault(chunk["status"], []).append(chunk["seq"])
    # Numbered from 0 without a gap per status, every chunk full but the last.
    assert all(sorted(seqs) == list(range(len(seqs))) for seqs in by_status.values())
    assert sum(len(c["rows"]) < 9 for c in chunks) <= len(by_status)


def test_packing_is_deterministic_across_batches() -> None:
    given = rows(500)
    packer = ChunkPacker(chunk_rows=10)
    streamed = [*packer.add(given[:137]), *packer.add(given[137:301]), *packer.add(given[301:]), *packer.flush()]
    assert sorted(streamed, key=lambda c: c["_id"]) == sorted(pack(given, chunk_rows=10), key=lambda c: c["_id"])
    assert packer.flush() == []


def test_sources_are_packed_apart() -> None:
    chunks = pack([*rows(30, "a"), *rows(30, "b")], chunk_rows=4)
    assert all({r["source_report_id"] for r in c["rows"]} == {c["source_report_id"]} for c in chunks)
    assert len({c["_id"] for c in chunks}) == len(chunks)


def test_raw_rows_are_packed_as_they_are() -> None:
    raw = [RawBSONDocument(bson.encode(r)) for r in rows(25)]
    chunks = pack(raw, chunk_rows=5)
    # The chunks hold the very raw documents (the driver copies their bytes), and encode to the rows.
    assert all(isinstance(r, RawBSONDocument) for c in chunks for r in c["rows"])
    decoded = [row for c in chunks for row in bson.decode(bson.encode(c))["rows"]]
    assert sorted(decoded, key=lambda r: r["row"]) == rows(25)


def test_a_row_stored_on_its_own_takes_its_own_id() -> None:
    row = {"_id": "src:ext-1", "source_report_id": "src", "creator_id": 1, "status": "sale", "row": None}
    chunk = single(row)
    assert chunk["_id"] == "src:ext-1" and chunk["rows"] == [row] and chunk["status"] == "sale"
    assert "seq" not in chunk


def test_a_chunk_holds_at_least_one_row() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        ChunkPacker(0)


@pytest.mark.parametrize(
    ("offset", "limit", "seqs"),
    [(0, 10, [0]), (95, 10, [0, 1]), (100, 10, [1]), (99, 1, [0]), (0, 250, [0, 1, 2]), (5, 0, [])],
)
def test_page_seqs_name_the_chunks_a_page_spans(offset: int, limit: int, seqs: list[int]) -> None:
    assert list(page_seqs(offset, limit, chunk_rows=100)) == seqs


@pytest.mark.parametrize("chunk_rows", [1, 3, 10, 100])
@pytest.mark.parametrize(("offset", "limit"), [(0, 10), (7, 5), (28, 10), (29, 1), (30, 10), (100, 3), (0, 1000)])
def test_a_page_cut_from_chunks_is_the_slice_of_the_rows(chunk_rows: int, offset: int, limit: int) -> None:
    sales = [r for r in rows(200) if r["status"] == "sale"]
    chunks = pack(sales, chunk_rows=chunk_rows)
    wanted = [c for c in chunks if c["seq"] in page_seqs(offset, limit, chunk_rows)]
    assert page_of(reversed(wanted), offset, limit, chunk_rows) == sales[offset : offset + limit]


def test_a_page_stops_at_a_missing_chunk() -> None:
    chunks = pack([r for r in rows(100) if r["status"] == "sale"], chunk_rows=5)
    assert page_of([c for c in chunks if c["seq"] != 1], 0, 12, chunk_rows=5) == chunks[0]["rows"]
