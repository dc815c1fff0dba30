"""Cheap, pure checks of an uploaded file before any reader touches it (runs in the parent).

The readers do not protect themselves (FIELD-NOTES: calamine aborts the whole process on a
1.6 KB "far corner" file; decompression bombs exhaust memory), so this module looks only at
magic bytes, the zip central directory (declared sizes, no decompression) and the first few KB
of the first sheet's XML, and rejects what is clearly hostile or not a spreadsheet.

Declared sizes can lie (a crafted zip may declare a small size and inflate to gigabytes), so
this is the first line only: the worker still runs under a memory limit and a timeout.
"""

from __future__ import annotations

import html
import re
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from services.ingest.excel.columns import column_index
from services.ingest.excel.types import ParseLimits, WorkbookFormat

ZIP_MAGIC: Final = b"PK\x03\x04"
EMPTY_ZIP_MAGIC: Final = b"PK\x05\x06"
OLE2_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
ODS_MIMETYPE: Final = b"application/vnd.oasis.opendocument.spreadsheet"
# The compression-ratio rule only looks at entries big enough to matter.
RATIO_MIN_ENTRY_BYTES: Final = 1024 * 1024
# How much decompressed XML we are willing to read from workbook parts in the parent.
WORKBOOK_XML_READ: Final = 256 * 1024
SHEET_HEAD_READ: Final = 16 * 1024
_EOCD = struct.Struct("<4s4H2LH")  # end of central directory record, 22 bytes

_SHEET_TAG = re.compile(rb"<(?:\w+:)?sheet\b([^>]*)>")
_ATTR_NAME = re.compile(rb'\bname="([^"]*)"')
_ATTR_RID = re.compile(rb'\b\w+:id="([^"]*)"')
_RELATIONSHIP = re.compile(rb"<(?:\w+:)?Relationship\b([^>]*)>")
_ATTR_ID = re.compile(rb'\bId="([^"]*)"')
_ATTR_TARGET = re.compile(rb'\bTarget="([^"]*)"')
_DIMENSION = re.compile(rb'<(?:\w+:)?dimension\s+ref="\$?([A-Z]{1,3})\$?(\d{1,7})(?::\$?([A-Z]{1,3})\$?(\d{1,7}))?"')


@dataclass(frozen=True, slots=True)
class SniffResult:
    """`format` is set when the file may go to the worker; otherwise `kind` and `message`
    say why not. `sheet` is the first sheet's name when it could be read cheaply."""

    format: WorkbookFormat | None = None
    kind: str | None = None
    message: str | None = None
    sheet: str | None = None

    @property
    def ok(self) -> bool:
        return self.format is not None


def _reject(kind: str, message: str, sheet: str | None = None) -> SniffResult:
    return SniffResult(kind=kind, message=message, sheet=sheet)


def _declared_entry_count(path: Path) -> int | None:
    """Entry count from the end-of-central-directory record, read before zipfile builds one
    object per entry (a 150 MB zip of empty entries would be millions of them)."""
    with path.open("rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 65_535 + _EOCD.size)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
    pos = tail.rfind(EMPTY_ZIP_MAGIC)
    if pos < 0 or pos + _EOCD.size > len(tail):
        return None
    _sig, _disk, _cd_disk, _disk_entries, total_entries, _cd_size, _cd_offset, _comment = _EOCD.unpack_from(tail, pos)
    return int(total_entries)


def sniff(path: Path, limits: ParseLimits) -> SniffResult:
    """Classify the file by content (never by its name) and reject hostile workbooks."""
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        return _reject("unreadable_file", f"The file could not be opened: {exc.strerror or exc}.")
    if head.startswith(OLE2_MAGIC):
        # Legacy .xls (BIFF in an OLE2 container); encrypted .xlsx files are OLE2 too, the reader
        # then fails and the worker reports it.
        return SniffResult(format="xls")
    if not head.startswith((ZIP_MAGIC, EMPTY_ZIP_MAGIC)):
        return _reject(
            "unsupported_format",
            "The file is not a spreadsheet: upload an Excel workbook (.xlsx, .xls, .xlsb) or .ods.",
        )
    count = _declared_entry_count(path)
    if count is None:
        return _reject("unreadable_file", "The file looks like a workbook but is damaged (truncated or corrupt).")
    if count > limits.max_zip_entries:
        return _reject("zip_bomb", f"The file has too many parts ({count}) to be a workbook.")
    try:
        with zipfile.ZipFile(path) as zf:
            return _sniff_zip(zf, limits)
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        OSError,
        EOFError,
        ValueError,
        zlib.error,
        NotImplementedError,
        RuntimeError,
        KeyError,
    ):
        return _reject("unreadable_file", "The file looks like a workbook but is damaged (truncated or corrupt).")


def _sniff_zip(zf: zipfile.ZipFile, limits: ParseLimits) -> SniffResult:
    infos = zf.infolist()
    if len(infos) > limits.max_zip_entries:
        return _reject("zip_bomb", f"The file has too many parts ({len(infos)}) to be a workbook.")
    total = 0
    for info in infos:
        total += info.file_size
        if (
            info.file_size > RATIO_MIN_ENTRY_BYTES
            and info.file_size / max(info.compress_size, 1) > limits.max_compression_ratio
        ):
            return _reject(
                "zip_bomb",
                "The file is compressed suspiciously well "
                f"({info.file_size / max(info.compress_size, 1):.0f}:1) and was not unpacked.",
            )
    if total > limits.max_uncompressed_bytes:
        return _reject(
            "file_too_large",
            f"The unpacked workbook would take {_size(total)}, over the limit of "
            f"{_size(limits.max_uncompressed_bytes)}.",
        )
    names = {info.filename for info in infos}
    if "xl/workbook.xml" in names:
        return _sniff_xlsx(zf, names, limits)
    if "xl/workbook.bin" in names:
        return SniffResult(format="xlsb")
    if "content.xml" in names and "mimetype" in names and zf.getinfo("mimetype").file_size <= 200:
        with zf.open("mimetype") as fh:
            if fh.read(200).strip() == ODS_MIMETYPE:
                return SniffResult(format="ods")
    return _reject(
        "unsupported_format",
        "The file is a zip archive but not a spreadsheet (no workbook inside): upload an Excel workbook.",
    )


def _read_head(zf: zipfile.ZipFile, name: str, limit: int) -> bytes:
    with zf.open(name) as fh:
        return fh.read(limit)


def _first_sheet(zf: zipfile.ZipFile, names: set[str]) -> tuple[str | None, str | None]:
    """(name, part path) of the first sheet in workbook order, as calamine sees index 0."""
    workbook = _read_head(zf, "xl/workbook.xml", WORKBOOK_XML_READ)
    tag = _SHEET_TAG.search(workbook)
    if tag is None:
        return None, None
    attrs = tag.group(1)
    name_match = _ATTR_NAME.search(attrs)
    sheet_name = html.unescape(name_match.group(1).decode("utf-8", "replace")) if name_match else None
    rid_match = _ATTR_RID.search(attrs)
    part: str | None = None
    if rid_match is not None and "xl/_rels/workbook.xml.rels" in names:
        rels = _read_head(zf, "xl/_rels/workbook.xml.rels", WORKBOOK_XML_READ)
        for rel in _RELATIONSHIP.finditer(rels):
            rel_id = _ATTR_ID.search(rel.group(1))
            target = _ATTR_TARGET.search(rel.group(1))
            if rel_id and target and rel_id.group(1) == rid_match.group(1):
                text = html.unescape(target.group(1).decode("utf-8", "replace"))
                part = text.lstrip("/") if text.startswith("/") else f"xl/{text}"
                break
    if part is None or part not in names:
        part = "xl/worksheets/sheet1.xml" if "xl/worksheets/sheet1.xml" in names else None
    return sheet_name, part


def _sniff_xlsx(zf: zipfile.ZipFile, names: set[str], limits: ParseLimits) -> SniffResult:
    sheet_name, part = _first_sheet(zf, names)
    if part is None:
        return SniffResult(format="xlsx", sheet=sheet_name)
    dim = _DIMENSION.search(_read_head(zf, part, SHEET_HEAD_READ))
    if dim is not None:
        last_col, last_row = (dim.group(3), dim.group(4)) if dim.group(3) else (dim.group(1), dim.group(2))
        rows, columns = int(last_row), column_index(last_col.decode()) + 1
        # The header row comes on top of max_rows data rows.
        if rows > limits.max_rows + 1 or columns > limits.max_columns:
            return _reject(
                "sheet_too_large",
                f"The first sheet spans {rows} rows and {columns} columns; at most {limits.max_rows} "
                f"data rows and {limits.max_columns} columns are accepted.",
                sheet_name,
            )
    return SniffResult(format="xlsx", sheet=sheet_name)


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"
