"""Excel parse-and-validate engine of the ingest service.

`parse_workbook(job, limits)` sniffs the upload, parses it in a capped child process and writes
each valid row's stored document (shared/sale_rows.py shape) to `job.spool_path` as plain
concatenated BSON (read back with `bson.decode_file_iter`). It never raises for a bad file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from services.ingest.excel.types import CellError, OutcomeKind, ParseJob, ParseLimits, ParseOutcome

if TYPE_CHECKING:
    from services.ingest.excel.runner import parse_workbook


def __getattr__(name: str) -> Any:
    # The runner (and asyncio with it) is loaded on first use: the parse worker imports this
    # package for its submodules and must not pay for the parent's machinery at every start.
    if name == "parse_workbook":
        from services.ingest.excel.runner import parse_workbook

        return parse_workbook
    raise AttributeError(name)


__all__ = ["CellError", "OutcomeKind", "ParseJob", "ParseLimits", "ParseOutcome", "parse_workbook"]
