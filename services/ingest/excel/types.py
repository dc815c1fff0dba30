"""Value types of the Excel engine: the job, the limits, the outcome and one error item.

All of them are plain frozen dataclasses so that they cross the process boundary as JSON
(the worker prints `CellError.to_dict()` items; the runner rebuilds them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    from shared.settings import Settings

OutcomeKind = Literal[
    "ok",
    "invalid",  # the workbook was read; its content has errors (rows, header, empty sheet)
    "unsupported_format",  # not a spreadsheet at all (the gateway answers 415)
    "file_too_large",  # declared uncompressed size over the limit
    "zip_bomb",  # compression ratio or entry count of a decompression bomb
    "sheet_too_large",  # more rows / columns than allowed
    "unreadable_file",  # damaged file, reader crash, memory limit
    "parse_timeout",  # the worker did not finish in time
]
OUTCOME_KINDS: Final[frozenset[str]] = frozenset(
    (
        "ok",
        "invalid",
        "unsupported_format",
        "file_too_large",
        "zip_bomb",
        "sheet_too_large",
        "unreadable_file",
        "parse_timeout",
    )
)
# Workbook formats the readers accept; the value doubles as the file extension calamine expects.
WorkbookFormat = Literal["xlsx", "xlsb", "ods", "xls"]


@dataclass(frozen=True, slots=True)
class CellError:
    """One item of the 409 body (SalesExceptionSchema).

    `row` is the 1-based Excel row and `cell` the A1 reference; both are None for errors about
    the file or the header as a whole. `column` is the canonical English column name.
    """

    sheet: str
    row: int | None
    column: str | None
    cell: str | None
    value: str | None
    code: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "cell": self.cell,
            "value": self.value,
            "code": self.code,
            "message": self.message,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CellError:
        row = data.get("row")
        return cls(
            sheet=str(data.get("sheet") or ""),
            row=int(row) if row is not None else None,
            column=_opt_str(data.get("column")),
            cell=_opt_str(data.get("cell")),
            value=_opt_str(data.get("value")),
            code=str(data["code"]),
            message=str(data["message"]),
        )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class ParseJob:
    """One workbook to parse, and where its valid rows go.

    `spool_path` receives the stored sale-row documents (shared/sale_rows.py shape) as plain
    concatenated BSON documents; read them back with `bson.decode_file_iter`.
    """

    path: Path
    spool_path: Path
    report_id: str
    source_report_id: str
    channel_id: int
    creator_id: int
    # IANA zone in which naive datetimes of the file are read.
    timezone: str = "UTC"
    # The report's currency (ISO 4217): of rows whose currency column and amount name none.
    currency: str = "RUB"

    def __post_init__(self) -> None:
        # Accept str paths from callers; refuse an unknown zone here, where it is the caller's
        # mistake, rather than as a failure of the uploaded file later.
        from services.ingest.excel.converters import load_zone

        object.__setattr__(self, "path", Path(self.path))
        object.__setattr__(self, "spool_path", Path(self.spool_path))
        load_zone(self.timezone)


@dataclass(frozen=True, slots=True)
class ParseLimits:
    timeout_seconds: float = 900.0
    memory_bytes: int = 6 * 1024**3
    max_rows: int = 2_000_000
    max_columns: int = 64
    max_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 200.0
    max_listed_errors: int = 100
    # A zip with more entries than this is not a workbook anyone wrote by hand or by Excel.
    max_zip_entries: int = 10_000
    # Sheet XML per part when a large sheet is read in parts (segments.py); None: the default.
    segment_bytes: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(
            timeout_seconds=settings.parse_timeout_seconds,
            memory_bytes=settings.parse_memory_bytes,
            max_rows=settings.max_rows,
            max_columns=settings.max_columns,
            max_uncompressed_bytes=settings.max_uncompressed_bytes,
            max_compression_ratio=settings.max_compression_ratio,
            max_listed_errors=settings.max_listed_errors,
        )


@dataclass(frozen=True, slots=True)
class ParseOutcome:
    """What happened to one workbook. Never an exception: every failure is a kind plus errors.

    `rows` counts the documents written to the spool (only meaningful when `ok`); on any other
    outcome the spool file has been removed. `errors` holds at most `max_listed_errors` items;
    `total_errors` is the count over the whole file.
    """

    kind: OutcomeKind
    rows: int = 0
    total_errors: int = 0
    errors: tuple[CellError, ...] = ()
    sheet: str | None = None
    format: WorkbookFormat | None = None
    elapsed_seconds: float = 0.0
    # Peak resident memory of the parsing child (bytes), None when it was never started.
    peak_rss_bytes: int | None = None
    # Technical detail for logs (exit status, stderr tail); never shown to the uploader.
    diagnostic: str | None = field(default=None, compare=False)

    @property
    def ok(self) -> bool:
        return self.kind == "ok"

    @property
    def detail(self) -> str:
        """The `detail` sentence of the 409/415 body."""
        if self.ok:
            return "the file is valid"
        if self.kind == "invalid":
            noun = "error" if self.total_errors == 1 else "errors"
            return f"the file has {self.total_errors} {noun}"
        return self.errors[0].message if self.errors else self.kind.replace("_", " ")
