"""The report workbook and CSV builders, read back with openpyxl and the csv module."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal

import openpyxl
import pytest
from bson import Decimal128, Int64
from openpyxl.chart import BarChart
from openpyxl.worksheet.worksheet import Worksheet

from services.gateway.export import (
    COUNT_FORMAT,
    CSV_SOURCE_COLUMNS,
    DATETIME_FORMAT,
    DECIMAL_FORMAT,
    LINK_COLUMNS,
    LINKS_SHEET,
    MAX_CHART_LINKS,
    MONEY_FORMAT,
    NO_LINK_LABEL,
    SALE_COLUMNS,
    SUMMARY_SHEET,
    WIDTH_SAMPLE_ROWS,
    build_report_csv,
    build_report_workbook,
    build_sales_csv,
    sanitize_sheet_title,
)
from shared.reports import NUMBER_METRICS as METRICS

MSK = timezone(timedelta(hours=3))


def make_report(**overrides: object) -> dict[str, object]:
    report: dict[str, object] = {
        "id": "rep-1",
        "name": "Spring campaign",
        "created_at": datetime(2024, 3, 1, 12, 30, tzinfo=MSK),  # 09:30 UTC
        "updated_at": datetime(2024, 3, 2, 8, 0, tzinfo=UTC),
        "channel_id": -1001234567890,
        "status": "success",
        "budget": Decimal("1000"),
        "creator_id": 7,
        "error_message": None,
        "profit": Decimal("5000.5"),
        "subs": 200,
        "funnel": 60,
        "leads": 40,
        "sales": 10,
        "romi": Decimal("400.05"),
        "cpc": Decimal("5"),
        "cpf": Decimal("16.666666"),  # stored with more digits: shown half-up to 2 decimals
        "cpl": Decimal("25"),
        "cac": Decimal("100"),
        "cr_funnel": Decimal("30"),
        "cr_leads": Decimal("20"),
        "cr_sales": Decimal("5"),
        "avg_funnel": Decimal("1.5"),
        "avg_lead": None,  # null stays null, never 0
        "avg_sale": Decimal("3.25"),
        "premium_percent": Decimal("12.345"),
        "username_percent": Decimal("80"),
        "unsubs": 50,
        "net_subs": 150,
        "unsub_percent": Decimal("25"),
        "cpc_net": Decimal("6.666666"),
        "retention_d1": Decimal("90.005"),
        "retention_d7": Decimal("80"),
        "retention_d30": None,
        "currency": "RUB",
        "exchange_rates": {"USD": Decimal("95"), "BRL": Decimal("16.2")},
        "profit_by_currency": {"RUB": Decimal("3100.5"), "USD": Decimal("20"), "EUR": Decimal("7.125")},
        "warnings": ["1 sale rows in EUR have no exchange rate and are not in profit"],
        "source_reports": [],
    }
    report.update(overrides)
    return report


def source(sid: str, name: str, rows: int = 0) -> dict[str, object]:
    created = datetime(2024, 3, 1, tzinfo=UTC)
    return {"id": sid, "kind": "excel", "name": name, "status": "success", "rows": rows, "created_at": created}


def sale_row(i: int, **overrides: object) -> dict[str, object]:
    sub = datetime(2024, 1, 1, 10, 0, tzinfo=UTC) + timedelta(minutes=i)
    row: dict[str, object] = {
        "user_id": 5_000_000_000 + i,
        "name": f"User {i}",
        "product": "Course",
        "purchase_amount": Decimal("1234.5"),
        "username": f"user{i}",
        "photo_url": None,
        "is_premium": i % 2 == 0,
        "phone_number": "+79991234567",
        "birthdate": date(1990, 1, 2),
        "status": "sale",
        "sub_date": sub,
        "unsub_date": None,
        "action_date": sub + timedelta(days=2, hours=6),
        "action_period": Decimal("2.25"),
        "invite_link": "https://t.me/+AbC",
    }
    row.update(overrides)
    return row


def load(data: bytes) -> openpyxl.Workbook:
    return openpyxl.load_workbook(io.BytesIO(data))


def labelled_rows(ws: Worksheet) -> dict[str, tuple[object, str]]:
    """Column A label → (value in B, number format of B)."""
    out: dict[str, tuple[object, str]] = {}
    for row in ws.iter_rows(min_col=1, max_col=2):
        if isinstance(row[0].value, str):
            out[row[0].value] = (row[1].value, row[1].number_format)
    return out


def ref_values(wb: openpyxl.Workbook, ref: str) -> list[object]:
    match = re.fullmatch(r"'?(?P<sheet>[^'!]+)'?!\$(?P<c1>[A-Z]+)\$(?P<r1>\d+):\$(?P<c2>[A-Z]+)\$(?P<r2>\d+)", ref)
    assert match, ref
    ws = wb[match["sheet"]]
    cells = ws[f"{match['c1']}{match['r1']}:{match['c2']}{match['r2']}"]
    return [cell.value for row in cells for cell in row]


def test_summary_lists_every_metric_with_value_format_and_definitions() -> None:
    report = make_report()
    wb = load(build_report_workbook(report, []))
    ws = wb[SUMMARY_SHEET]
    rows = labelled_rows(ws)
    for metric in METRICS:
        label = f"{metric.label_en} ({metric.key})"
        assert label in rows, label
        value, fmt = rows[label]
        expected = report[metric.key]
        if expected is None:
            assert value is None
        elif metric.kind == "count":
            assert value == expected
            assert fmt == "#,##0"
        else:
            assert value == pytest.approx(float(Decimal(str(expected)).quantize(Decimal("0.01"), ROUND_HALF_UP)))
            assert fmt == (MONEY_FORMAT if metric.kind == "money" else DECIMAL_FORMAT)
    # The definition columns, English and Russian, are filled for every metric.
    header = next(r for r in ws.iter_rows(values_only=True) if r[0] == "Metric")
    assert header[:5] == ("Metric", "Value", "Unit", "Definition", "Определение")
    labels = {f"{m.label_en} ({m.key})" for m in METRICS}
    metric_rows = [r for r in ws.iter_rows(values_only=True) if r[0] in labels]
    assert len(metric_rows) == len(METRICS)
    assert all(r[3] and r[4] for r in metric_rows)
    assert any("бюджет" in str(r[4]) for r in metric_rows)
    assert rows["ROMI (romi)"][0] == pytest.approx(400.05)
    assert rows["Cost per funnel entry (CPF) (cpf)"][0] == pytest.approx(16.67)
    assert rows["Premium users (premium_percent)"][0] == pytest.approx(12.35)  # half-up


def test_summary_header_fields_dates_and_formats() -> None:
    wb = load(build_report_workbook(make_report(status="failed", error_message="bad file"), []))
    rows = labelled_rows(wb[SUMMARY_SHEET])
    assert rows["Name"][0] == "Spring campaign"
    assert rows["Channel id"][0] == -1001234567890
    assert rows["Status"][0] == "failed"
    assert rows["Error message"][0] == "bad file"
    assert rows["Budget"] == (1000, MONEY_FORMAT)
    # Converted to UTC (Excel has no zones) and formatted as a date-time.
    assert rows["Created at (UTC)"] == (datetime(2024, 3, 1, 9, 30), DATETIME_FORMAT)
    assert rows["Updated at (UTC)"][0] == datetime(2024, 3, 2, 8, 0)


def test_funnel_chart_is_a_horizontal_bar_chart_over_the_four_stages() -> None:
    report = make_report()
    wb = load(build_report_workbook(report, []))
    ws = wb[SUMMARY_SHEET]
    assert len(ws._charts) == 1
    chart = ws._charts[0]
    assert isinstance(chart, BarChart)
    assert chart.type == "bar"  # horizontal
    assert len(chart.series) == 1
    series = chart.series[0]
    categories = series.cat.strRef.f if series.cat.strRef is not None else series.cat.numRef.f
    assert ref_values(wb, categories) == ["Subscribers", "Funnel", "Leads", "Sales"]
    assert ref_values(wb, series.val.numRef.f) == [report["subs"], report["funnel"], report["leads"], report["sales"]]
    assert chart.x_axis.delete is False  # stage names visible


def test_pending_report_has_empty_metrics_not_zeros() -> None:
    empty = {m.key: None for m in METRICS}
    wb = load(build_report_workbook(make_report(status="pending", **empty), []))
    rows = labelled_rows(wb[SUMMARY_SHEET])
    assert all(rows[f"{m.label_en} ({m.key})"][0] is None for m in METRICS)
    assert len(wb[SUMMARY_SHEET]._charts) == 1


def test_source_sheets_hold_rows_with_formats_and_fitted_widths() -> None:
    long_link = "https://t.me/+" + "x" * 40
    rows = [sale_row(0, invite_link=long_link), sale_row(1, status="lead", purchase_amount=None)]
    src = source("src-1", "march.xlsx", rows=2)
    wb = load(build_report_workbook(make_report(source_reports=[src]), [(src, rows)]))
    assert wb.sheetnames == [SUMMARY_SHEET, "march.xlsx"]
    ws = wb["march.xlsx"]
    assert [c.value for c in ws[1]] == list(SALE_COLUMNS)
    assert ws.max_row == 3
    col = {name: i for i, name in enumerate(SALE_COLUMNS)}
    first = ws[2]
    assert first[col["user_id"]].value == 5_000_000_000
    assert first[col["user_id"]].number_format == "0"
    assert first[col["purchase_amount"]].value == pytest.approx(1234.5)
    assert first[col["purchase_amount"]].number_format == MONEY_FORMAT
    assert first[col["sub_date"]].value == datetime(2024, 1, 1, 10, 0)
    assert first[col["sub_date"]].number_format == DATETIME_FORMAT
    assert first[col["birthdate"]].number_format == "yyyy-mm-dd"
    assert first[col["action_period"]].value == pytest.approx(2.25)
    assert first[col["action_period"]].number_format == DECIMAL_FORMAT
    assert first[col["is_premium"]].value is True
    assert ws[3][col["purchase_amount"]].value is None
    assert ws[3][col["status"]].value == "lead"
    widths = {k: v.width for k, v in ws.column_dimensions.items()}
    link_letter = openpyxl.utils.get_column_letter(col["invite_link"] + 1)
    name_letter = openpyxl.utils.get_column_letter(col["name"] + 1)
    assert widths[link_letter] >= len(long_link)
    assert widths[name_letter] < widths[link_letter]
    assert ws.freeze_panes == "A2"
    # The Summary's source table names the sheet.
    summary_rows = list(wb[SUMMARY_SHEET].iter_rows(values_only=True))
    assert any(r[0] == "march.xlsx" and r[1] == "march.xlsx" and r[4] == 2 for r in summary_rows)


def test_stored_documents_are_accepted_as_rows() -> None:
    """Raw `sales` documents: Int64 ids, Decimal128 money, action_period_ms, birthdate as datetime."""
    doc = {
        "_id": "s:1", "row": 2, "user_id": Int64(42), "purchase_amount": Decimal128("99.999"),
        "status": "sale", "is_premium": False, "birthdate": datetime(2000, 5, 6, tzinfo=UTC),
        "sub_date": datetime(2024, 1, 1, tzinfo=UTC), "action_date": datetime(2024, 1, 2, 6, tzinfo=UTC),
        "action_period_ms": Int64(108_000_000),  # 1.25 days
    }  # fmt: skip
    src = source("s", "s.xlsx")
    wb = load(build_report_workbook(make_report(), [(src, [doc])]))
    values = dict(zip(SALE_COLUMNS, [c.value for c in wb["s.xlsx"][2]], strict=True))
    assert values["user_id"] == 42
    assert values["purchase_amount"] == pytest.approx(100.00)  # half-up to cents
    assert values["action_period"] == pytest.approx(1.25)
    assert values["birthdate"] == datetime(2000, 5, 6)


def test_text_that_looks_like_a_formula_stays_text() -> None:
    rows = [sale_row(0, name='=HYPERLINK("http://evil","x")', product="=1+1")]
    src = source("s", "s")
    wb = load(build_report_workbook(make_report(), [(src, rows)]))
    cells = wb["s"][2]
    assert cells[SALE_COLUMNS.index("name")].data_type == "s"
    assert cells[SALE_COLUMNS.index("name")].value == '=HYPERLINK("http://evil","x")'
    assert cells[SALE_COLUMNS.index("product")].data_type == "s"


def test_many_rows_are_all_written_in_order() -> None:
    count = WIDTH_SAMPLE_ROWS * 2 + 17  # beyond the width sample, so both phases of the stream are used
    src = source("s", "big")
    rows = (sale_row(i) for i in range(count))  # a generator: the builder must stream it once
    wb = load(build_report_workbook(make_report(), [(src, rows)]))
    ws = wb["big"]
    assert ws.max_row == count + 1
    user_ids = [r[0] for r in ws.iter_rows(min_row=2, max_col=1, values_only=True)]
    assert user_ids == [5_000_000_000 + i for i in range(count)]


def test_sheet_names_are_sanitised_unique_and_short() -> None:
    names = ["sales.xlsx", "SALES.xlsx", "a/b:c*d?[e]", "x" * 50, "x" * 50, "", "Summary", "History"]
    sources = [(source(f"s{i}", n), [sale_row(i)]) for i, n in enumerate(names)]
    wb = load(build_report_workbook(make_report(source_reports=[s for s, _ in sources]), sources))
    titles = wb.sheetnames[1:]
    assert len(titles) == len(names)
    assert len({t.lower() for t in wb.sheetnames}) == len(wb.sheetnames)
    assert all(0 < len(t) <= 31 for t in titles)
    assert all(not set(t) & set("[]:*?/\\") for t in titles)
    assert titles[0] == "sales.xlsx"
    assert titles[1] == "SALES.xlsx (2)"
    assert titles[2] == "a_b_c_d__e_"
    assert titles[3] == "x" * 31
    assert titles[4] == "x" * 27 + " (2)"
    assert titles[5] == "excel 6"
    assert titles[6] == "Summary (2)"
    assert titles[7] == "excel 8"


def test_sanitize_sheet_title_records_taken_names() -> None:
    taken: set[str] = set()
    assert sanitize_sheet_title("'quoted'", taken) == "quoted"
    assert sanitize_sheet_title("Quoted", taken) == "Quoted (2)"
    assert sanitize_sheet_title("quoted", taken) == "quoted (3)"
    assert taken == {"quoted", "quoted (2)", "quoted (3)"}


def parse_csv(lines: list[str]) -> list[list[str]]:
    return list(csv.reader(io.StringIO("".join(lines))))


def test_sales_csv_has_header_and_typed_values() -> None:
    rows = [
        sale_row(0, name='Иван, "Ваня"', phone_number="+79991234567"),
        sale_row(1, purchase_amount=None, status=None, is_premium=False, action_date=None, action_period=None),
    ]
    lines = list(build_sales_csv(rows))
    assert all(line.endswith("\r\n") for line in lines)
    table = parse_csv(lines)
    assert table[0] == list(SALE_COLUMNS)
    first = dict(zip(SALE_COLUMNS, table[1], strict=True))
    assert first["user_id"] == "5000000000"
    assert first["name"] == 'Иван, "Ваня"'
    assert first["purchase_amount"] == "1234.50"
    assert first["is_premium"] == "true"
    assert first["phone_number"] == "+79991234567"  # a plain number is not "neutralised"
    assert first["birthdate"] == "1990-01-02"
    assert first["sub_date"] == "2024-01-01T10:00:00Z"
    assert first["action_period"] == "2.25"
    second = dict(zip(SALE_COLUMNS, table[2], strict=True))
    assert second["purchase_amount"] == ""
    assert second["status"] == ""
    assert second["is_premium"] == "false"
    assert len(table) == 3
    # UTF-8 encodable as is (the route encodes each chunk).
    assert "Иван".encode() in "".join(lines).encode("utf-8")


def test_sales_csv_neutralises_formulas() -> None:
    rows = [sale_row(0, name="=cmd|' /C calc'!A0", product="@SUM(A1)", username="-2+3", invite_link="+1 (555) 010")]
    values = dict(zip(SALE_COLUMNS, parse_csv(list(build_sales_csv(rows)))[1], strict=True))
    assert values["name"] == "'=cmd|' /C calc'!A0"
    assert values["product"] == "'@SUM(A1)"
    assert values["username"] == "'-2+3"
    assert values["invite_link"] == "+1 (555) 010"


def test_report_csv_prefixes_each_row_with_its_source() -> None:
    a, b = source("src-a", "a.xlsx"), source("src-b", "b.xlsx")
    table = parse_csv(list(build_report_csv([(a, [sale_row(0), sale_row(1)]), (b, [sale_row(2)])])))
    assert table[0] == [*CSV_SOURCE_COLUMNS, *SALE_COLUMNS]
    assert [r[:3] for r in table[1:]] == [["src-a", "a.xlsx", "excel"]] * 2 + [["src-b", "b.xlsx", "excel"]]
    assert [r[3] for r in table[1:]] == ["5000000000", "5000000001", "5000000002"]


def link(name: str | None, subs: int, profit: float, cost: float | None) -> dict[str, object]:
    """An entry as GET .../links answers it (JSON numbers)."""
    return {
        "invite_link": name, "subs": subs, "unsubs": 1, "net_subs": subs - 1, "funnel": 0, "leads": 2, "sales": 3,
        "buyers": 2, "profit": profit, "cost": cost, "romi": None if cost is None else 12.5, "cpc": None,
        "cpc_net": None, "cac": None, "cr_sales": 1.25, "retention_d1": 99.99, "retention_d7": None,
        "retention_d30": None,
    }  # fmt: skip


def test_summary_shows_currency_rates_profit_by_currency_and_warnings() -> None:
    wb = load(build_report_workbook(make_report(), []))
    ws = wb[SUMMARY_SHEET]
    rows = labelled_rows(ws)
    assert rows["Report currency"][0] == "RUB"
    values = [r for r in ws.iter_rows(values_only=True)]
    rates_at = next(i for i, r in enumerate(values) if r[0] == "Exchange rate")
    assert values[rates_at][1] == "RUB per unit"
    assert [(r[0], r[1]) for r in values[rates_at + 1 : rates_at + 3]] == [("BRL", 16.2), ("USD", 95)]
    by_currency = next(i for i, r in enumerate(values) if r[1] == "Profit (original amounts)")
    assert [(r[0], r[1]) for r in values[by_currency + 1 : by_currency + 4]] == [
        ("EUR", 7.13), ("RUB", 3100.5), ("USD", 20)
    ]  # fmt: skip
    warned = next(i for i, r in enumerate(values) if r[0] == "Warnings")
    assert values[warned + 1][0] == "1 sale rows in EUR have no exchange rate and are not in profit"
    assert rows["Retention, day 1 (retention_d1)"][0] == pytest.approx(90.01)  # half-up
    assert rows["Retention, day 30 (retention_d30)"][0] is None
    assert rows["Subscribers who stayed (net_subs)"] == (150, COUNT_FORMAT)
    assert rows["Cost per subscriber who stayed (cpc_net)"] == (pytest.approx(6.67), MONEY_FORMAT)


def test_links_sheet_holds_the_table_and_a_profit_and_cost_chart() -> None:
    links = [link("https://t.me/+a", 5, 1000.5, 200), link(None, 3, 0, None), link("=cmd", 1, 10.005, 0)]
    wb = load(build_report_workbook(make_report(), [], links))
    assert wb.sheetnames[:2] == [SUMMARY_SHEET, LINKS_SHEET]
    ws = wb[LINKS_SHEET]
    header = [c.value for c in ws[1]][: len(LINK_COLUMNS)]
    assert header == [column for column, _ in LINK_COLUMNS]
    assert "3 links; the chart shows profit and cost of all 3" in [c.value for c in ws[1]]
    table = [list(r[: len(LINK_COLUMNS)]) for r in ws.iter_rows(min_row=2, values_only=True)]
    assert [r[0] for r in table] == ["https://t.me/+a", NO_LINK_LABEL, "=cmd"]  # formula-like text stays text
    assert ws["A4"].data_type == "s"
    assert table[0][1:10] == [5, 1, 4, 0, 2, 3, 2, 1000.5, 200]
    assert table[1][9] is None and table[1][10] is None  # no cost → cost and romi empty, never 0
    assert table[2][8] == pytest.approx(10.01)
    assert ws["I2"].number_format == MONEY_FORMAT and ws["B2"].number_format == COUNT_FORMAT
    [chart] = ws._charts
    assert isinstance(chart, BarChart) and chart.type == "col"
    titles = [s.tx.strRef.f.split("!")[1].replace("$", "") for s in chart.series]
    assert [ws[cell].value for cell in titles] == ["profit", "cost"]
    profit, cost = chart.series
    assert ref_values(wb, profit.val.numRef.f) == [1000.5, 0, pytest.approx(10.01)]
    assert ref_values(wb, cost.val.numRef.f) == [200, None, 0]
    categories = profit.cat.strRef.f if profit.cat.strRef is not None else profit.cat.numRef.f
    assert ref_values(wb, categories) == ["https://t.me/+a", NO_LINK_LABEL, "=cmd"]


def test_links_chart_shows_the_first_links_of_a_long_table_and_says_so() -> None:
    links = [link(f"https://t.me/+{i:05d}", 10_000 - i, float(i), 1.0) for i in range(MAX_CHART_LINKS + 70)]
    wb = load(build_report_workbook(make_report(), [], links))
    ws = wb[LINKS_SHEET]
    assert ws.max_row == 1 + len(links)  # every link in the table
    note = f"{len(links)} links; the chart shows profit and cost of the first {MAX_CHART_LINKS} (most subscribers)"
    assert note in [c.value for c in ws[1]]
    [chart] = ws._charts
    assert len(ref_values(wb, chart.series[0].val.numRef.f)) == MAX_CHART_LINKS


def test_no_links_sheet_unless_asked_and_an_empty_table_has_no_chart() -> None:
    assert LINKS_SHEET not in load(build_report_workbook(make_report(), [])).sheetnames
    wb = load(build_report_workbook(make_report(), [], []))
    assert wb[LINKS_SHEET].max_row == 1 and wb[LINKS_SHEET]._charts == []
    assert "0 links" in str([c.value for c in wb[LINKS_SHEET][1]])
