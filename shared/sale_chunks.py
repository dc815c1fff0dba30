"""How sale rows are stored: packed into chunk documents of the `sales` collection.

A chunk holds rows of one source report and one status, in the file's row order:

    {_id: "{source_report_id}:{status}:{seq}", source_report_id, status, seq,
     report_id, channel_id, creator_id, source, rows: [row, ...]}

Each row inside keeps every field it always had (its own `_id`, owner, source...), so a pipeline
that unwinds the chunks (`rows_pipeline`) hands readers the very documents a row-per-document
layout would. An Excel upload fills chunks of `CHUNK_ROWS` rows; a row that is written on its own
(a connector's synced sale, a recorded event) is a chunk of one, whose `_id` is the row's own id
and which has no `seq`, so a re-read page or a refund replaces or updates it by `_id`.

Why chunks: every document written costs a database server a fixed amount whatever its size, and
every secondary index entry another. On SecantusDB one indexed sale-row document cost as much as
many rows packed into a chunk (`bench.index_cost`, docs/benchmarks.md, "Pipeline"); on MongoDB the
`sales` index holds one entry per chunk instead of one per row. And the sales listing's default page (one status, in
row order) becomes a point lookup of one or two chunks by `_id`, whatever the offset.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

from shared.sale_rows import Owned, SaleRow, SaleStatus

Document = dict[str, Any]
Row = Mapping[str, Any]

# pymongo.ASCENDING, spelled out: the parse worker builds chunks with this module and should not
# load the whole driver at every start for one constant.
ASCENDING: Final = 1
CHUNK_ROWS: Final = 100


class _ChunkFields(Owned):
    status: SaleStatus | None
    rows: list[SaleRow]


class SaleChunk(_ChunkFields, total=False):
    """One document of `sales` (the module's docstring says how rows are packed)."""

    seq: int  # absent on a row stored on its own


# Fields copied from a chunk's rows to the chunk itself: what ownership checks, deletions and
# refunds filter on before any row is unwound.
CHUNK_FIELDS: Final = ("report_id", "source_report_id", "channel_id", "creator_id", "source")
# Row fields a chunk carries too, so a filter on them can select chunks before the unwind.
CHUNK_MATCH_FIELDS: Final = (*CHUNK_FIELDS, "status")
# The one secondary index of `sales`: a source's chunks of one status, in order.
SALES_INDEX: Final = [("source_report_id", ASCENDING), ("status", ASCENDING), ("seq", ASCENDING)]
# Turns chunks into their rows.
UNWIND_ROWS: Final[tuple[Document, ...]] = ({"$unwind": "$rows"}, {"$replaceRoot": {"newRoot": "$rows"}})


def chunk_id(source_report_id: str, status: str | None, seq: int) -> str:
    return f"{source_report_id}:{status or '-'}:{seq}"


def _chunk(first: Row, status: str | None, rows: list[Any], seq: int | None, _id: str) -> Document:
    doc: Document = {"_id": _id, **{field: first.get(field) for field in CHUNK_FIELDS}, "status": status}
    if seq is not None:
        doc["seq"] = seq
    doc["rows"] = rows
    return doc


def single(row: Row) -> Document:
    """A row stored on its own: the chunk takes the row's `_id`."""
    return _chunk(row, row.get("status"), [row], None, str(row["_id"]))


class ChunkPacker:
    """Packs one source report's rows, given in row order, into full chunks per status.

    Deterministic: the same rows in the same order give the same chunks with the same ids, so a
    replayed upload inserts nothing twice. Holds at most one unfinished chunk per status."""

    def __init__(self, chunk_rows: int = CHUNK_ROWS) -> None:
        if chunk_rows < 1:
            raise ValueError("a chunk holds at least one row")
        self.chunk_rows = chunk_rows
        self._open: dict[str | None, list[Any]] = {}
        self._next_seq: dict[str | None, int] = {}

    def add(self, rows: Iterable[Row]) -> list[Document]:
        """Takes rows; returns the chunks they completed."""
        done: list[Document] = []
        for row in rows:
            status = row.get("status")
            pending = self._open.setdefault(status, [])
            pending.append(row)
            if len(pending) >= self.chunk_rows:
                done.append(self._close(status))
        return done

    def flush(self) -> list[Document]:
        """The unfinished chunks, once every row has been added."""
        return [self._close(status) for status in list(self._open) if self._open[status]]

    def _close(self, status: str | None) -> Document:
        rows = self._open.pop(status)
        seq = self._next_seq.get(status, 0)
        self._next_seq[status] = seq + 1
        first = rows[0]
        return _chunk(first, status, rows, seq, chunk_id(str(first["source_report_id"]), status, seq))


def pack(rows: Sequence[Row], chunk_rows: int = CHUNK_ROWS) -> list[Document]:
    """All of one or more sources' rows (each source's in row order) as chunks."""
    packers: dict[str, ChunkPacker] = {}
    chunks: list[Document] = []
    for row in rows:
        packer = packers.setdefault(str(row["source_report_id"]), ChunkPacker(chunk_rows))
        chunks.extend(packer.add([row]))
    for packer in packers.values():
        chunks.extend(packer.flush())
    return chunks


def rows_pipeline(chunk_match: Mapping[str, Any], row_match: Mapping[str, Any] | None = None) -> list[Document]:
    """The rows of the chunks `chunk_match` selects (through the index), then filtered by
    `row_match` on the rows' own fields."""
    stages: list[Document] = [{"$match": dict(chunk_match)}, *UNWIND_ROWS]
    if row_match:
        stages.append({"$match": dict(row_match)})
    return stages


def count_pipeline(chunk_match: Mapping[str, Any], row_match: Mapping[str, Any] | None = None) -> list[Document]:
    return [*rows_pipeline(chunk_match, row_match), {"$count": "rows"}]


def page_seqs(offset: int, limit: int, chunk_rows: int = CHUNK_ROWS) -> range:
    """The chunk numbers that hold rows offset .. offset+limit-1 of one status, in row order."""
    if limit < 1:
        return range(0)
    return range(offset // chunk_rows, (offset + limit - 1) // chunk_rows + 1)


def page_of(chunks: Iterable[Mapping[str, Any]], offset: int, limit: int, chunk_rows: int = CHUNK_ROWS) -> list[Any]:
    """Cuts one page out of the chunks `page_seqs` named, given in any order. Chunks fill in
    sequence, so a missing one is past the end: the page stops at the first gap."""
    by_seq = {int(c["seq"]): c for c in chunks}
    seqs = page_seqs(offset, limit, chunk_rows)
    rows: list[Any] = []
    for seq in seqs:
        if seq not in by_seq:
            break
        rows.extend(by_seq[seq]["rows"])
    start = offset - seqs.start * chunk_rows
    return rows[start : start + limit]
