"""Child-process entry point that reads one workbook: `python -m services.ingest.excel.worker`.

Why a child: calamine is fast but loads the whole first sheet into memory and can abort the
process on hostile files (FIELD-NOTES). The runner starts this module per file, under a memory
limit and a timeout, and turns any crash into an outcome for that file.

Protocol
  stdin   one JSON job: {path, spool_path, format, timezone, currency, max_errors, max_rows, max_columns,
          memory_bytes, report_id, source_report_id, channel_id, creator_id}
  stdout  exactly one JSON line:
          {"ok": true, "rows": N, "sheet": str, "peak_rss_bytes": int}
          {"ok": false, "kind": "invalid" | "sheet_too_large" | "unreadable_file" | "out_of_memory"
           | ..., "total_errors": n, "errors": [CellError.to_dict()...], "sheet": str | null,
           "peak_rss_bytes": int}
  spool   `spool_path` receives each valid row's document (shared/sale_rows.py shape) as plain
          concatenated BSON documents (`bson.encode(doc)` one after another), read back with
          `bson.decode_file_iter`. Writing stops at the first error; validation goes on so that
          every error of the file is counted.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import bson

from services.ingest.excel.bulk import run_columnar, stream_spool
from services.ingest.excel.columns import match_header
from services.ingest.excel.converters import load_zone
from services.ingest.excel.sniff import sniff
from services.ingest.excel.types import CellError, ParseLimits
from services.ingest.excel.validate import ErrorSink, RowValidator
from shared.currency import DEFAULT_CURRENCY

SPOOL_BUFFER_BYTES: Final = 1024 * 1024


def file_error(kind: str, message: str, sheet: str | None = None) -> dict[str, Any]:
    """A whole-file failure as a worker answer with its single error item."""
    error = CellError(sheet=sheet or "", row=None, column=None, cell=None, value=None, code=kind, message=message)
    return {"ok": False, "kind": kind, "total_errors": 1, "errors": [error.to_dict()], "sheet": sheet}


def _is_blank(row: Iterable[Any]) -> bool:
    return all(v == "" or v is None or (type(v) is str and not v.strip()) for v in row)


def validate_rows(
    rows: Iterator[list[Any]],
    *,
    sheet: str,
    col_offset: int,
    job: dict[str, Any],
    spool: IO[bytes],
) -> dict[str, Any]:
    """The sheet's rows (first one = Excel row 1) → answer dict; valid documents go to `spool`.

    Kept apart from the reader so that it can be driven by any row source in tests.
    """
    max_rows: int = job["max_rows"]
    sink = ErrorSink(job["max_errors"])
    excel_row = 0
    header: list[Any] | None = None
    # The header is the first non-empty row (a blank line above it is forgiven; cell
    # references stay true to the sheet either way).
    for cells in rows:
        excel_row += 1
        if not _is_blank(cells):
            header = cells
            break
    if header is None:
        return file_error("empty_sheet", "The first sheet is empty: it has no header and no rows.", sheet) | {
            "kind": "invalid"
        }
    header_row = excel_row
    match = match_header(header, sheet=sheet, excel_row=header_row, col_offset=col_offset)
    if match.errors:
        # Without a sound header, row errors would be noise: report the header alone.
        return {
            "ok": False,
            "kind": "invalid",
            "total_errors": len(match.errors),
            "errors": [e.to_dict() for e in match.errors[: job["max_errors"]]],
            "sheet": sheet,
        }
    validator = RowValidator(
        positions=match.positions,
        sheet=sheet,
        zone=load_zone(job.get("timezone") or "UTC"),
        sink=sink,
        report_id=job["report_id"],
        source_report_id=job["source_report_id"],
        channel_id=int(job["channel_id"]),
        creator_id=int(job["creator_id"]),
        col_offset=col_offset,
        default_currency=job.get("currency") or DEFAULT_CURRENCY,
    )
    validate = validator.validate
    encode = bson.encode
    write = spool.write
    written = 0
    data_rows = 0
    last_data_row = header_row + max_rows
    for cells in rows:
        excel_row += 1
        if excel_row > last_data_row and not _is_blank(cells):
            return file_error("sheet_too_large", f"The first sheet has more than {max_rows} data rows.", sheet)
        doc = validate(cells, excel_row)
        if doc is None:
            continue
        data_rows += 1
        if not sink.total:
            write(encode(doc))
            written += 1
    if sink.total:
        return {
            "ok": False,
            "kind": "invalid",
            "total_errors": sink.total,
            "errors": [e.to_dict() for e in sink.items],
            "sheet": sheet,
        }
    if data_rows == 0:
        return file_error("empty_sheet", "The first sheet has a header but no data rows.", sheet) | {"kind": "invalid"}
    return {"ok": True, "rows": written, "sheet": sheet}


def _open_path(path: Path, fmt: str, tmp: str) -> Path:
    """calamine picks its reader from the file extension; stored uploads have none, so a
    symlink with the sniffed format's extension points at the file (no copy)."""
    if path.suffix.lower().lstrip(".") == fmt:
        return path
    link = Path(tmp) / f"workbook.{fmt}"
    link.symlink_to(path.resolve())
    return link


def run_job(job: dict[str, Any], *, columnar: bool = True) -> dict[str, Any]:
    """Read, validate and spool one workbook (the worker's whole job, without process setup).
    `columnar=False` skips the column-wise path (tests compare the two)."""
    from python_calamine import CalamineWorkbook  # imported late: after the memory limit is set

    path = Path(job["path"])
    fmt = job.get("format")
    if not fmt:
        found = sniff(path, ParseLimits(max_rows=job["max_rows"], max_columns=job["max_columns"]))
        if found.format is None:
            return file_error(found.kind or "unsupported_format", found.message or "unsupported file")
        fmt = found.format
    # Plain workbooks are decided column-wise (bulk.py); every other file goes on below.
    fast = run_columnar(job, path, fmt) if columnar else None
    if fast is not None:
        return fast
    with tempfile.TemporaryDirectory(prefix="saleswire-parse-") as tmp:
        try:
            workbook = CalamineWorkbook.from_path(str(_open_path(path, fmt, tmp)))
            names = workbook.sheet_names
            if not names:
                return file_error("empty_sheet", "The workbook has no sheets.") | {"kind": "invalid"}
            sheet_name = names[0]
            sheet = workbook.get_sheet_by_index(0)  # loads the whole sheet
        except MemoryError:
            raise
        except Exception as exc:
            return file_error("unreadable_file", _reader_message(exc), None)
        end = sheet.end
        start = sheet.start
        if end is not None:
            rows, columns = end[0] + 1, end[1] + 1
            if rows > job["max_rows"] + 1 or columns > job["max_columns"]:
                return file_error(
                    "sheet_too_large",
                    f"The first sheet spans {rows} rows and {columns} columns; at most {job['max_rows']} "
                    f"data rows and {job['max_columns']} columns are accepted.",
                    sheet_name,
                )
        # calamine's rows start at sheet row 1 but at the first used column (observed with
        # python-calamine 0.9: leading empty rows are yielded, leading empty columns are not).
        col_offset = start[1] if start is not None else 0
        with open(job["spool_path"], "wb", buffering=SPOOL_BUFFER_BYTES) as spool:
            try:
                return validate_rows(
                    iter(sheet.iter_rows()), sheet=sheet_name, col_offset=col_offset, job=job, spool=spool
                )
            except MemoryError:
                raise
            except Exception as exc:
                return file_error("unreadable_file", _reader_message(exc), sheet_name)


def _reader_message(exc: Exception) -> str:
    # The technical reason goes to stderr, which the runner keeps as the outcome's diagnostic.
    print(f"reader error: {exc!r}", file=sys.stderr)
    name = type(exc).__name__
    if name == "PasswordError":
        return "The workbook is password-protected; remove the password and upload it again."
    return "The file could not be read as a spreadsheet (it is damaged or in an unsupported variant)."


def _peak_rss_bytes() -> int:
    # ru_maxrss is in kilobytes on Linux.
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _die_with_parent(parent_pid: int) -> None:
    """A worker whose ingest process was killed must not parse on alone: ask the kernel to
    SIGKILL us when the parent dies (Linux), and catch a parent that died before we asked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the parse timeout still bounds us
        return
    if parent_pid and os.getppid() != parent_pid:
        os._exit(1)


PR_SET_PDEATHSIG = 1


def main() -> int:
    _die_with_parent(int(os.environ.get("SALESWIRE_PARSE_PARENT_PID", "0") or 0))
    job = json.loads(sys.stdin.read())
    memory = int(job.get("memory_bytes") or 0)
    if memory > 0:
        # The cap is set here rather than through preexec_fn: preexec_fn is unsafe in a parent
        # with threads (the ingest service has them), and this runs before the reader is imported.
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    try:
        answer = run_job(job)
        if "totals" not in answer:
            answer = stream_spool(job, answer)
    except MemoryError:
        answer = {"ok": False, "kind": "out_of_memory", "total_errors": 1, "errors": [], "sheet": None}
    answer["peak_rss_bytes"] = _peak_rss_bytes()
    sys.stdout.write(json.dumps(answer, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    code = main()
    # Skip interpreter teardown of a sheet that may hold a gigabyte of Python objects.
    os._exit(code)
