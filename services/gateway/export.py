"""Report export: an .xlsx workbook with the metrics and a funnel chart, and CSV of the sale rows.

Pure builders: they take the report as `reports.report_view` returns it and sale rows as
`shared.sale_row_json.sale_row_view` returns them (raw `sales` documents are accepted too), and
return bytes or lines. All I/O (MongoDB, HTTP) stays in `routes/exports.py`.

The workbook is written with openpyxl's write-only mode: rows are streamed to a temporary file as
they come, so a source report with millions of rows does not hold millions of cell objects in memory.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal
from itertools import chain, islice
from typing import Final

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.chart import BarChart, Reference
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from shared.reports import LINK_FIELDS, NUMBER_METRICS, Kind, metric_value, to_number
from shared.sale_rows import MS_PER_DAY

Row = Mapping[str, object]

MONEY_FORMAT: Final = "#,##0.00"
# Percent metrics are already ×100 in the API (12.5 means 12.5 %), so they get a plain 2-decimal
# format rather than Excel's "0.00%", which would multiply them by 100 again.
DECIMAL_FORMAT: Final = "0.00"
COUNT_FORMAT: Final = "#,##0"
DATETIME_FORMAT: Final = "yyyy-mm-dd hh:mm"
DATE_FORMAT: Final = "yyyy-mm-dd"
# Telegram ids reach 13+ digits: "0" keeps Excel from showing them as 1.00123E+12.
ID_FORMAT: Final = "0"

SUMMARY_SHEET: Final = "Summary"
MAX_SHEET_TITLE: Final = 31
MAX_CELL_CHARS: Final = 32_767  # Excel's hard limit for one cell
MAX_COLUMN_WIDTH: Final = 60
# Widths of a rows sheet are fitted to the first rows only: a write-only sheet needs its column
# widths before the first row is written, and buffering every row would defeat streaming.
WIDTH_SAMPLE_ROWS: Final = 500
_CENT: Final = Decimal("0.01")


LINKS_SHEET: Final = "Links"
# The bar chart of the Links sheet shows this many links at most (the first, i.e. most subscribers):
# a chart of 10 000 bars is unreadable; the table below it has every link.
MAX_CHART_LINKS: Final = 30
NO_LINK_LABEL: Final = "(no link)"
# The links table's columns (the endpoint's fields, in its order) and their kinds (the link itself
# is text, no number format).
LINK_COLUMNS: Final[tuple[tuple[str, Kind | None], ...]] = tuple(
    (field.key, None if field.kind == "link" else field.kind) for field in LINK_FIELDS
)
_KIND_FORMATS: Final[Mapping[Kind, str]] = {
    "count": COUNT_FORMAT,
    "money": MONEY_FORMAT,
    "percent": DECIMAL_FORMAT,
    "days": DECIMAL_FORMAT,
}
FUNNEL_STAGES: Final = (("subs", "Subscribers"), ("funnel", "Funnel"), ("leads", "Leads"), ("sales", "Sales"))

# The columns of the public sales listing, in its order.
SALE_COLUMNS: Final = (
    "user_id", "name", "product", "purchase_amount", "username", "photo_url", "is_premium",
    "phone_number", "birthdate", "status", "sub_date", "unsub_date", "action_date", "action_period",
    "invite_link",
)  # fmt: skip
_SALE_FORMATS: Final[Mapping[str, str]] = {
    "user_id": ID_FORMAT,
    "purchase_amount": MONEY_FORMAT,
    "birthdate": DATE_FORMAT,
    "sub_date": DATETIME_FORMAT,
    "unsub_date": DATETIME_FORMAT,
    "action_date": DATETIME_FORMAT,
    "action_period": DECIMAL_FORMAT,
}
CSV_SOURCE_COLUMNS: Final = ("source_report_id", "source_name", "source_kind")

_BOLD: Final = Font(bold=True)
_TITLE: Final = Font(bold=True, size=14)
_HEADER_FILL: Final = PatternFill("solid", fgColor="DDEBF7")
_WRAP: Final = Alignment(wrap_text=True, vertical="top")
_INVALID_TITLE_CHARS: Final = re.compile(r"[\[\]:*?/\\\x00-\x1f]")


# ----------------------------------------------------------------------------- value helpers


def to_naive_utc(value: object) -> datetime | None:
    """Excel has no time zones: datetimes are written as naive UTC (the headers say so)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _to_date(value: object) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value[:10])
        except ValueError:
            return None
    return None


def _round2(value: Decimal) -> Decimal:
    return value.quantize(_CENT, rounding=ROUND_HALF_UP)


def _action_period(row: Row) -> Decimal | None:
    """Days, 2 decimals: from `action_period` (listing shape) or `action_period_ms` (stored shape)."""
    days = to_number(row.get("action_period"))
    if days is not None:
        return _round2(Decimal(str(days)))
    ms = to_number(row.get("action_period_ms"))
    if ms is not None:
        return _round2(Decimal(str(ms)) / MS_PER_DAY)
    return None


def _clean_text(value: object) -> str | None:
    if value is None:
        return None
    text = str(ILLEGAL_CHARACTERS_RE.sub("", str(value)))
    return text[:MAX_CELL_CHARS]


def sale_values(row: Row) -> list[object]:
    """One sale row as typed values in SALE_COLUMNS order (None for a missing value)."""
    values: list[object] = []
    for column in SALE_COLUMNS:
        raw = row.get(column)
        value: object
        if column == "user_id":
            number = to_number(raw)
            value = int(number) if number is not None else None
        elif column == "purchase_amount":
            amount = to_number(raw)
            value = None if amount is None else _round2(Decimal(str(amount)))
        elif column == "is_premium":
            value = bool(raw)
        elif column == "birthdate":
            value = _to_date(raw)
        elif column in ("sub_date", "unsub_date", "action_date"):
            value = to_naive_utc(raw)
        elif column == "action_period":
            value = _action_period(row)
        else:
            value = _clean_text(raw)
        values.append(value)
    return values


def _display_width(value: object, number_format: str | None = None) -> int:
    """Roughly how many characters Excel shows for a value, to fit column widths."""
    if value is None:
        return 0
    if isinstance(value, datetime):
        return 16
    if isinstance(value, date):
        return 10
    if isinstance(value, bool):
        return 5
    if isinstance(value, int | float | Decimal):
        if number_format in (MONEY_FORMAT, COUNT_FORMAT):
            return len(f"{value:,.2f}") if number_format == MONEY_FORMAT else len(f"{value:,.0f}")
        if number_format == DECIMAL_FORMAT:
            return len(f"{value:.2f}")
        return len(str(value))
    return max((len(line) for line in str(value).splitlines()), default=0)


def _width(chars: int) -> float:
    return float(min(max(chars, 4) + 2, MAX_COLUMN_WIDTH))


def sanitize_sheet_title(name: str, taken: set[str], fallback: str = "Sheet") -> str:
    """A valid, unique (case-insensitively, as Excel compares) sheet title of at most 31 characters.

    `taken` holds the lower-cased titles already used and is updated.
    """
    base = _INVALID_TITLE_CHARS.sub("_", name).strip().strip("'").strip()
    # "History" is reserved by Excel for change tracking.
    if not base or base.lower() == "history":
        base = fallback
    title = base[:MAX_SHEET_TITLE]
    counter = 2
    while title.lower() in taken:
        suffix = f" ({counter})"
        title = base[: MAX_SHEET_TITLE - len(suffix)].rstrip() + suffix
        counter += 1
    taken.add(title.lower())
    return title


# ----------------------------------------------------------------------------- workbook


def _cell(ws: object, value: object, number_format: str | None = None, font: Font | None = None) -> object:
    """A styled write-only cell. Text is forced to the string type so that a value such as
    "=HYPERLINK(...)" from an uploaded file stays text and never becomes a live formula."""
    if isinstance(value, str) and value.startswith("="):
        cell = WriteOnlyCell(ws, value)
        cell.data_type = "s"
    elif number_format is None and font is None:
        return value
    else:
        cell = WriteOnlyCell(ws, value)
    if number_format is not None:
        cell.number_format = number_format
    if font is not None:
        cell.font = font
    return cell


def _header_cells(ws: object, titles: Sequence[str]) -> list[object]:
    cells: list[object] = []
    for title in titles:
        cell = WriteOnlyCell(ws, title)
        cell.font = _BOLD
        cell.fill = _HEADER_FILL
        cells.append(cell)
    return cells


def build_report_workbook(
    report: Row, sources: Sequence[tuple[Row, Iterable[Row]]], links: Sequence[Row] | None = None
) -> bytes:
    """The report as .xlsx: a Summary sheet (header, metrics with definitions, funnel chart, currencies,
    warnings, sources), a Links sheet (the links table with a bar chart of profit and cost per link)
    when `links` is given, and one sheet per source report with its sale rows. `sources` pairs each
    entry of `report["source_reports"]` with an iterable of its rows (consumed once, in order);
    `links` is the links endpoint's answer."""
    wb = Workbook(write_only=True)
    taken = {SUMMARY_SHEET.lower()}
    if links is not None:
        taken.add(LINKS_SHEET.lower())
    titles = [
        sanitize_sheet_title(str(src.get("name") or ""), taken, fallback=f"{src.get('kind') or 'source'} {i}")
        for i, (src, _) in enumerate(sources, 1)
    ]
    _write_summary(wb, report, [(title, src) for title, (src, _) in zip(titles, sources, strict=True)])
    if links is not None:
        _write_links_sheet(wb, links)
    for title, (_, rows) in zip(titles, sources, strict=True):
        _write_rows_sheet(wb, title, rows)
    buffer = io.BytesIO()
    wb.save(buffer)
    return buffer.getvalue()


def _write_summary(wb: Workbook, report: Row, sources: Sequence[tuple[str, Row]]) -> None:
    ws = wb.create_sheet(SUMMARY_SHEET)
    # Each line: (values, number formats per column, is-header). Built first so widths can be fitted
    # before writing, which a write-only sheet requires.
    lines: list[tuple[list[object], list[str | None], bool]] = []

    def add(values: list[object], formats: list[str | None] | None = None, header: bool = False) -> int:
        lines.append((values, formats or [None] * len(values), header))
        return len(lines)  # the 1-based Excel row of this line

    add([f"Saleswire report: {_clean_text(report.get('name')) or ''}"])
    add([])
    add(["Report", "Value"], header=True)
    add(["Name", _clean_text(report.get("name"))])
    add(["Report id", _clean_text(report.get("id"))])
    channel = to_number(report.get("channel_id"))
    add(["Channel id", None if channel is None else int(channel)], [None, ID_FORMAT])
    add(["Status", _clean_text(report.get("status"))])
    budget = to_number(report.get("budget"))
    add(["Budget", None if budget is None else _round2(Decimal(str(budget)))], [None, MONEY_FORMAT])
    add(["Report currency", _clean_text(report.get("currency"))])
    add(["Created at (UTC)", to_naive_utc(report.get("created_at"))], [None, DATETIME_FORMAT])
    add(["Updated at (UTC)", to_naive_utc(report.get("updated_at"))], [None, DATETIME_FORMAT])
    if report.get("error_message"):
        add(["Error message", _clean_text(report.get("error_message"))])
    add([])
    add(["Metric", "Value", "Unit", "Definition", "Определение"], header=True)
    for metric in NUMBER_METRICS:
        add(
            [f"{metric.label_en} ({metric.key})", metric_value(report, metric), metric.unit.en,
             metric.definition_en, metric.definition_ru],
            [None, _KIND_FORMATS[metric.kind], None, None, None],
        )  # fmt: skip
    add([])
    funnel_header = add(["Funnel stage", "Count"], header=True)
    for key, label in FUNNEL_STAGES:
        add([label, to_number(report.get(key))], [None, COUNT_FORMAT])
    add([])
    currency = _clean_text(report.get("currency")) or ""
    add(["Exchange rate", f"{currency} per unit"], header=True)
    rates = _number_map(report.get("exchange_rates"))
    for code, rate in rates:
        add([code, rate], [None, None])
    if not rates:
        add(["(none)"])
    add([])
    add(["Currency", "Profit (original amounts)"], header=True)
    for code, amount in _number_map(report.get("profit_by_currency")):
        add([code, _round2(amount)], [None, MONEY_FORMAT])
    add([])
    add(["Warnings"], header=True)
    stored_warnings = report.get("warnings")
    warnings = [_clean_text(w) for w in stored_warnings] if isinstance(stored_warnings, list) else []
    for warning in warnings or ["(none)"]:
        add([warning])
    add([])
    add(["Sheet", "Source", "Kind", "Status", "Rows", "Created at (UTC)"], header=True)
    for title, src in sources:
        add(
            [title, _clean_text(src.get("name")), _clean_text(src.get("kind")), _clean_text(src.get("status")),
             to_number(src.get("rows")), to_naive_utc(src.get("created_at"))],
            [None, None, None, None, COUNT_FORMAT, DATETIME_FORMAT],
        )  # fmt: skip

    # The title line would make column A absurdly wide: it is left out of the fitting.
    widths: dict[int, int] = {}
    for values, formats, _ in lines[1:]:
        for col, (value, fmt) in enumerate(zip(values, formats, strict=False), 1):
            widths[col] = max(widths.get(col, 0), _display_width(value, fmt))
    for col, chars in widths.items():
        ws.column_dimensions[get_column_letter(col)].width = _width(chars)

    first = True
    for values, formats, header in lines:
        if first:
            ws.append([_cell(ws, values[0], font=_TITLE)])
            first = False
        elif header:
            ws.append(_header_cells(ws, [str(v) for v in values]))
        else:
            ws.append([_cell(ws, v, f) for v, f in zip(values, formats, strict=False)])

    chart = BarChart()
    chart.type = "bar"  # horizontal bars: a funnel reads top to bottom
    chart.style = 10
    chart.title = "Funnel"
    chart.legend = None
    chart.y_axis.title = "Users / rows"
    chart.y_axis.numFmt = COUNT_FORMAT
    # Excel draws the first category of a bar chart at the bottom; reversing the axis puts
    # subscribers on top and sales at the bottom, like a funnel.
    chart.x_axis.scaling.orientation = "maxMin"
    # openpyxl ≥ 3.1 marks axes as deleted unless told otherwise, which hides the stage names.
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    data = Reference(ws, min_col=2, min_row=funnel_header, max_row=funnel_header + len(FUNNEL_STAGES))
    categories = Reference(ws, min_col=1, min_row=funnel_header + 1, max_row=funnel_header + len(FUNNEL_STAGES))
    chart.add_data(data, titles_from_data=True)
    chart.set_categories(categories)
    chart.width = 16
    chart.height = 8
    ws.add_chart(chart, f"{get_column_letter(len(widths) + 2)}3")


def _number_map(value: object) -> list[tuple[str, Decimal]]:
    """A {code: number} map of the report as (code, Decimal) pairs, by code."""
    if not isinstance(value, Mapping):
        return []
    pairs = []
    for key, raw in value.items():
        number = to_number(raw)
        if number is not None:
            pairs.append((str(key), Decimal(str(number))))
    return sorted(pairs)


def link_values(entry: Row) -> list[object]:
    """One entry of the links table as typed values in LINK_COLUMNS order."""
    values: list[object] = []
    for column, kind in LINK_COLUMNS:
        raw = entry.get(column)
        if kind is None:
            values.append(_clean_text(raw) if raw is not None else NO_LINK_LABEL)
            continue
        number = to_number(raw)
        if number is None:
            values.append(None)
        elif kind == "count":
            values.append(int(number))
        else:
            values.append(_round2(Decimal(str(number))))
    return values


def _write_links_sheet(wb: Workbook, links: Sequence[Row]) -> None:
    ws = wb.create_sheet(LINKS_SHEET)
    formats = [None if kind is None else _KIND_FORMATS[kind] for _, kind in LINK_COLUMNS]
    rows = [link_values(entry) for entry in links]
    for col, ((column, _), fmt) in enumerate(zip(LINK_COLUMNS, formats, strict=True), 1):
        chars = max([len(column), *(_display_width(values[col - 1], fmt) for values in rows[:WIDTH_SAMPLE_ROWS])])
        ws.column_dimensions[get_column_letter(col)].width = _width(chars)
    ws.freeze_panes = "B2"
    charted = min(len(rows), MAX_CHART_LINKS)
    note = f"{len(rows)} links; the chart shows profit and cost of " + (
        f"all {charted}" if charted == len(rows) else f"the first {charted} (most subscribers)"
    )
    ws.append([*_header_cells(ws, [column for column, _ in LINK_COLUMNS]), None, _cell(ws, note, font=_BOLD)])
    to_cells = _StyledRowCells(ws, formats)
    for values in rows:
        ws.append(to_cells(values))
    if not charted:
        return
    profit_col = 1 + [column for column, _ in LINK_COLUMNS].index("profit")
    chart = BarChart()
    chart.type = "col"
    chart.style = 10
    chart.title = "Profit and cost per link"
    chart.y_axis.title = "Money"
    chart.y_axis.numFmt = MONEY_FORMAT
    chart.x_axis.delete = False
    chart.y_axis.delete = False
    # Profit and cost are adjacent columns: two series, titled by their headers.
    chart.add_data(Reference(ws, min_col=profit_col, max_col=profit_col + 1, min_row=1, max_row=1 + charted),
                   titles_from_data=True)  # fmt: skip
    chart.set_categories(Reference(ws, min_col=1, min_row=2, max_row=1 + charted))
    chart.width = 24
    chart.height = 10
    ws.add_chart(chart, f"{get_column_letter(len(LINK_COLUMNS) + 2)}3")


class _StyledRowCells:
    """Turns one row of values into what a write-only sheet appends, reusing one styled cell per
    column. `WriteOnlyWorksheet.append` serialises the row before it returns, so a cell object can
    be refilled for the next row; this avoids building and styling a new cell for every value,
    which dominates the cost of large sheets."""

    def __init__(self, ws: object, formats: Sequence[str | None]) -> None:
        self._ws = ws
        self._protos: list[object | None] = []
        for fmt in formats:
            proto = None
            if fmt is not None:
                proto = WriteOnlyCell(ws)
                proto.number_format = fmt
            self._protos.append(proto)

    def __call__(self, values: Sequence[object]) -> list[object]:
        out: list[object] = []
        for value, proto in zip(values, self._protos, strict=True):
            if value is None:
                out.append(None)
            elif proto is not None:
                proto.value = value  # type: ignore[attr-defined]
                out.append(proto)
            elif isinstance(value, str) and value.startswith("="):
                # Text that looks like a formula must stay text (see _cell); it is rare, so a
                # fresh cell per occurrence costs nothing.
                out.append(_cell(self._ws, value))
            else:
                out.append(value)
        return out


def _write_rows_sheet(wb: Workbook, title: str, rows: Iterable[Row]) -> None:
    ws = wb.create_sheet(title)
    iterator = iter(rows)
    sample = [sale_values(row) for row in islice(iterator, WIDTH_SAMPLE_ROWS)]
    formats = [_SALE_FORMATS.get(column) for column in SALE_COLUMNS]
    for col, (column, fmt) in enumerate(zip(SALE_COLUMNS, formats, strict=True), 1):
        chars = max([len(column), *(_display_width(values[col - 1], fmt) for values in sample)])
        ws.column_dimensions[get_column_letter(col)].width = _width(chars)
    ws.freeze_panes = "A2"
    ws.append(_header_cells(ws, SALE_COLUMNS))
    to_cells = _StyledRowCells(ws, formats)
    for values in chain(sample, (sale_values(row) for row in iterator)):
        ws.append(to_cells(values))


# ----------------------------------------------------------------------------- CSV


def _csv_text(value: str) -> str:
    """Neutralise spreadsheet formula injection: a text cell that a spreadsheet would evaluate
    (=, @, +/- followed by something that is not a plain number, tab, CR) gets a leading apostrophe.
    Plain signed numbers such as phone numbers "+79991234567" are left intact."""
    if not value:
        return value
    first = value[0]
    if first in "=@\t\r" or (first in "+-" and not re.fullmatch(r"[+-][\d\s().]*", value)):
        return "'" + value
    return value


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")  # naive UTC from sale_values
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, int | float):
        return str(value)
    return _csv_text(str(value))


class _CsvLine:
    """Formats one row as one CSV line (RFC 4180 quoting, CRLF) reusing one buffer."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer)

    def __call__(self, values: Iterable[str]) -> str:
        self._buffer.seek(0)
        self._buffer.truncate()
        self._writer.writerow(values)
        return self._buffer.getvalue()


def sales_csv_header(prefix: Sequence[str] = ()) -> str:
    return _CsvLine()([*prefix, *SALE_COLUMNS])


def sales_csv_lines(rows: Iterable[Row], prefix: Sequence[str] = ()) -> Iterator[str]:
    """CSV lines (no header) of sale rows, each starting with the `prefix` values."""
    line = _CsvLine()
    cleaned_prefix = [_csv_text(p) for p in prefix]
    for row in rows:
        yield line([*cleaned_prefix, *(_csv_value(v) for v in sale_values(row))])


def build_sales_csv(rows: Iterable[Row]) -> Iterator[str]:
    """The sale rows as CSV lines: a header row, then one line per row. Encode as UTF-8."""
    yield sales_csv_header()
    yield from sales_csv_lines(rows)


def source_prefix(source: Row) -> list[str]:
    """The values of CSV_SOURCE_COLUMNS for one source report."""
    return [str(source.get("id") or ""), str(source.get("name") or ""), str(source.get("kind") or "")]


def build_report_csv(sources: Iterable[tuple[Row, Iterable[Row]]]) -> Iterator[str]:
    """Rows of all source reports in one CSV, each line prefixed by CSV_SOURCE_COLUMNS."""
    yield sales_csv_header(CSV_SOURCE_COLUMNS)
    for source, rows in sources:
        yield from sales_csv_lines(rows, source_prefix(source))
