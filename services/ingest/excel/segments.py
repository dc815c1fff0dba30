"""The first sheet of a large workbook read in parts of rows, so that its first rows are checked,
built and stored while later ones are still being read (bulk.py streams them).

Why: fastexcel and python-calamine load the whole sheet before handing over a single row, and
neither reads a slice without parsing the whole sheet again (docs/benchmarks.md, "Pipeline",
2026-12-05); on a 1 M-row file that is ≈ 8 s before anything can be stored. Here the sheet's
XML is decompressed as a stream and cut at row ends into parts of `SEGMENT_BYTES`; each part
becomes a small workbook of its own (the same workbook parts, this sheet holding the header row
renumbered to sit just above the part's first row, then the part's rows as they are), which
fastexcel reads as usual. Every cell keeps its own reference, so calamine places it where it
stands in the whole sheet, and each part reads as the whole sheet's rows `first_row …` do.

Only the plain shape is cut (un-prefixed XML, every row numbered, rows in order, the header in
row 1: what `columnar.header_in_first_row` asks for already); anything else raises `NotPlain`,
and the caller reads the file whole, as before.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pyarrow as pa

from services.ingest.excel.columnar import Sheet, header_in_first_row

# Sheet XML per part: ≈ 40 000 rows of 15 columns. The first part is stored after reading this
# much; the per-part costs (a small zip, fastexcel's open, the column checks' set-up) stay small.
SEGMENT_BYTES: Final = 16 * 1024 * 1024
# Each part re-reads the workbook's shared strings (the one other part that grows with the file): a
# part is at least this many times their size, so that re-reading costs at most about an eighth more.
PARTS_SHARE: Final = 8
READ_BLOCK: Final = 4 * 1024 * 1024

_ROOT = re.compile(rb"<worksheet\b[^>]*>")
_SHEET_DATA = re.compile(rb"<sheetData\s*>")
_ROW_TAG = re.compile(rb"<row\b([^>]*)>")
_ROW_NUMBER = re.compile(rb'\br="(\d+)"')
_CELL_REF_ROW1 = re.compile(rb'(<c\b[^>]*?\br="[A-Z]{1,3})1"')
_EMPTY_SHEET: Final = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData/></worksheet>'
)
_END: Final = b"</sheetData></worksheet>"


class NotPlain(Exception):
    """The sheet is not of the shape cut here (the caller reads it whole)."""


@dataclass(frozen=True, slots=True)
class Segment:
    sheet: Sheet
    first_row: int  # sheet row of the table's first row
    last_row: int  # the last row number in the part's XML (≥ the table's last row)


class SegmentedSheet:
    """The parts of one workbook's first sheet, read one after another (`parts()`)."""

    def __init__(self, path: Path, part: str, sheet_name: str, others: dict[str, bytes], segment_bytes: int) -> None:
        self.path = path
        self.part = part
        self.sheet_name = sheet_name
        self.others = others
        self.segment_bytes = segment_bytes

    def parts(self) -> Iterator[Segment]:
        with zipfile.ZipFile(self.path) as zf, zf.open(self.part) as fh:
            buffer = b""
            while b"<sheetData" not in buffer or b"</row>" not in buffer:
                block = fh.read(READ_BLOCK)
                if not block or len(buffer) >= self.segment_bytes:
                    # Never hold more than a part to find the header row (open_segmented already
                    # saw it end in the sheet's first 64 KiB: this only bounds a surprise).
                    raise NotPlain("no header row in the first part")
                buffer += block
            root = _ROOT.search(buffer)
            data = _SHEET_DATA.search(buffer)
            if root is None or data is None or root.start() > data.start():
                raise NotPlain("not a plain worksheet")
            head = root.group(0) + b"<sheetData>"
            header_end = buffer.index(b"</row>", data.end()) + len(b"</row>")
            header = buffer[data.end() : header_end]
            tag = _ROW_TAG.search(header)
            number = _ROW_NUMBER.search(tag.group(1)) if tag else None
            if tag is None or number is None or number.group(1) != b"1" or header.count(b"<row") != 1:
                raise NotPlain("the header is not row 1")
            buffer = buffer[header_end:]
            previous = 1
            done = False
            while not done:
                while len(buffer) < self.segment_bytes:
                    block = fh.read(READ_BLOCK)
                    if not block:
                        done = True
                        break
                    buffer += block
                if done:
                    end = buffer.find(b"</sheetData>")
                    if end < 0:
                        raise NotPlain("the sheet data does not end")
                    body, buffer = buffer[:end], b""
                else:
                    # The last row that ends inside the part's size (or the first row, if longer).
                    cut = buffer.rfind(b"</row>", 0, self.segment_bytes)
                    if cut < 0:
                        cut = buffer.find(b"</row>")
                    if cut < 0:
                        raise NotPlain("a row longer than the sheet read so far")
                    body, buffer = buffer[: cut + len(b"</row>")], buffer[cut + len(b"</row>") :]
                if b"<c" not in body:
                    continue  # rows without cells: nothing to read
                segment = self._read(head, header, body, previous)
                previous = segment.last_row
                yield segment

    def _read(self, head: bytes, header: bytes, body: bytes, previous: int) -> Segment:
        import fastexcel

        first = _ROW_TAG.search(body)
        first_number = _ROW_NUMBER.search(first.group(1)) if first else None
        last = body.rfind(b"<row")
        last_tag = _ROW_TAG.match(body, last) if last >= 0 else None
        last_number = _ROW_NUMBER.search(last_tag.group(1)) if last_tag else None
        if first_number is None or last_number is None:
            raise NotPlain("a row without its number")
        first_row, last_row = int(first_number.group(1)), int(last_number.group(1))
        if first_row <= previous or last_row < first_row:
            raise NotPlain("rows out of order")
        above = str(first_row - 1).encode()
        moved = _CELL_REF_ROW1.sub(rb"\g<1>" + above + b'"', header)
        moved = _ROW_TAG.sub(
            lambda m: b"<row" + _ROW_NUMBER.sub(b'r="' + above + b'"', m.group(1)) + b">", moved, count=1
        )
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            for name, data in self.others.items():
                zf.writestr(name, data)
            zf.writestr(self.part, b"".join((head, moved, body, _END)))
        try:
            reader = fastexcel.read_excel(out.getvalue())
            sheet = reader.load_sheet(0, dtype_coercion="strict", schema_sample_rows=None)
            infos = sheet.available_columns()
            table = pa.table(sheet.to_arrow())
        except fastexcel.UnsupportedColumnTypeCombinationError as exc:
            raise NotPlain("a column of two value types") from exc
        # The rows fastexcel gives are the range from the header down to the last cell with a
        # value: more than the part's numbered rows means a cell stood above the header copy.
        if table.num_rows > last_row - first_row + 1:
            raise NotPlain("a cell outside its part")
        offset = infos[0].absolute_index if infos else 0
        for i, info in enumerate(infos):
            if info.absolute_index != offset + i or info.column_name_from not in ("looked_up", "generated"):
                raise NotPlain("columns out of shape")
        name = str(reader.sheet_names[0]) if reader.sheet_names else self.sheet_name
        return Segment(Sheet(name=name, table=table, col_offset=offset), first_row, last_row)


def open_segmented(path: Path, fmt: str, segment_bytes: int = SEGMENT_BYTES) -> SegmentedSheet | None:
    """The workbook's first sheet in parts of about `segment_bytes` of XML, or None when it is
    under two parts (read whole: nothing to overlap), or not of the plain shape (read whole)."""
    from services.ingest.excel.sniff import _first_sheet

    if fmt != "xlsx" or not header_in_first_row(path):
        return None
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
            name, part = _first_sheet(zf, {info.filename for info in infos})
            if part is None:
                return None
            size = zf.getinfo(part).file_size
            strings = sum(i.file_size for i in infos if i.filename.lower().endswith("sharedstrings.xml"))
            segment_bytes = max(segment_bytes, PARTS_SHARE * strings)
            if size < 2 * segment_bytes:
                return None
            others: dict[str, bytes] = {}
            for info in infos:
                if info.filename == part or info.is_dir():
                    continue
                # Other sheets are never read (index 0 is): an empty one keeps the workbook whole.
                if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".xml"):
                    others[info.filename] = _EMPTY_SHEET
                elif not info.filename.startswith(("xl/media/", "xl/drawings/", "xl/printerSettings/")):
                    others[info.filename] = zf.read(info)
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, EOFError, RuntimeError, NotImplementedError):
        return None
    return SegmentedSheet(path, part, name or "Sheet1", others, segment_bytes)
