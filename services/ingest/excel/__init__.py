"""Excel parse-and-validate engine of the ingest service.

`parse_workbook(job, limits)` sniffs the upload, parses it in a capped child process and writes
each valid row's stored document (shared/sale_rows.py shape) to `job.spool_path` as plain
concatenated BSON (read back with `bson.decode_file_iter`). It never raises for a bad file.
"""

from services.ingest.excel.runner import parse_workbook
from services.ingest.excel.types import CellError, OutcomeKind, ParseJob, ParseLimits, ParseOutcome

__all__ = ["CellError", "OutcomeKind", "ParseJob", "ParseLimits", "ParseOutcome", "parse_workbook"]
