"""The `saleswire` command-line client against the running system (every service its own process):
the template it downloads is a valid upload, an upload ends with the metrics printed, a malformed
workbook is refused with a table naming the cell, and an export opens with its funnel chart."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import openpyxl
import pytest
from openpyxl.chart import BarChart

from services.gateway.export import LINK_COLUMNS, LINKS_SHEET, SALE_COLUMNS, SUMMARY_SHEET
from services.gateway.template import EXAMPLE_ROWS
from tests.e2e.conftest import Stack
from tests.workbooks import EN_HEADERS, workbook_bytes

CHANNEL = -1009876543210
BUDGET = Decimal("1000")
Run = Callable[..., subprocess.CompletedProcess[str]]


def saleswire_command() -> list[str]:
    # The console script declared in pyproject; `-m` when the package is not installed as a script.
    script = Path(sys.executable).parent / "saleswire"
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.gateway.cli"]


@pytest.fixture(scope="module")
def run(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Runs the CLI logged in as a user of its own (its reports are invisible to other tests)."""
    home = tmp_path_factory.mktemp("cli")
    env = {
        **os.environ,
        "SALESWIRE_CONFIG": str(home / "config.json"),
        "COLUMNS": "220",  # wide enough that rich never folds a table cell
        "PYTHONIOENCODING": "utf-8",  # box-drawing table borders whatever the CI locale
    }

    def invoke(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*saleswire_command(), *args], env=env, cwd=home, capture_output=True, text=True, timeout=timeout
        )

    login = invoke("login", "--url", stack.gateway_url, "--token", stack.token("cli-user"))
    assert login.returncode == 0, login.stderr
    assert (home / "config.json").stat().st_mode & 0o077 == 0
    return invoke


def half_up(value: Decimal) -> Decimal:
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


@pytest.fixture(scope="module")
def uploaded(run: Run, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """Downloads the template and uploads it unchanged; returns (report id, CLI output)."""
    folder = tmp_path_factory.mktemp("upload")
    template = folder / "template.xlsx"
    got = run("template", "-o", str(template))
    assert got.returncode == 0, got.stderr
    result = run(
        "upload", str(template), "--channel", str(CHANNEL), "--name", "CLI campaign", "--budget", str(BUDGET),
        "--poll-interval", "0.3", "--wait-timeout", "120",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    first_line = result.stdout.splitlines()[0]
    assert first_line.startswith("uploaded template.xlsx: report ")
    report_id = first_line.split("report ")[1].split(" ")[0]
    return report_id, result.stdout


def test_upload_prints_the_finished_metrics(uploaded: tuple[str, str]) -> None:
    _, output = uploaded
    assert "success" in output
    # Expected values from the template's example rows (SPEC §4), not from the system under test.
    profit = sum((Decimal(str(r["purchase_amount"])) for r in EXAMPLE_ROWS if r.get("status") == "sale"), Decimal())
    romi = half_up((profit - BUDGET) / BUDGET * 100)
    subs = len({r["user_id"] for r in EXAMPLE_ROWS})
    sale_rows = [r for r in EXAMPLE_ROWS if r.get("status") == "sale"]
    days: list[Decimal] = []
    for row in sale_rows:
        action, sub = row["action_date"], row["sub_date"]
        assert isinstance(action, datetime) and isinstance(sub, datetime)
        days.append(Decimal(str((action - sub).total_seconds())) / 86_400)
    avg_sale = half_up(sum(days, Decimal()) / len(days))
    lines = {line.split("│")[1].strip(): line for line in output.splitlines() if line.count("│") >= 3}
    assert f"{romi:.2f} %" in lines["ROMI (romi)"]
    assert f"{profit:,.2f}" in lines["Profit (profit)"]
    assert f" {subs} " in lines["Subscribers (subs)"]
    assert f"{half_up(BUDGET / subs):,.2f}" in lines["Cost per subscriber (CPC) (cpc)"]
    assert f"{avg_sale:.2f} days" in lines["Average days to sale (avg_sale)"]
    assert "—" in lines["Average days to funnel (avg_funnel)"]  # no funnel rows: null, shown as a dash


def test_reports_and_show_find_the_upload(run: Run, uploaded: tuple[str, str]) -> None:
    report_id, _ = uploaded
    listed = run("reports", "--channel", str(CHANNEL))
    assert listed.returncode == 0, listed.stderr
    assert report_id in listed.stdout
    assert "CLI campaign" in listed.stdout
    shown = run("show", report_id)
    assert shown.returncode == 0, shown.stderr
    assert "ROMI (romi)" in shown.stdout
    assert "template.xlsx" in shown.stdout  # the source report


def test_malformed_workbook_is_refused_with_the_cell(run: Run, tmp_path: Path) -> None:
    header = list(EN_HEADERS)
    good = [1, "A", None, None, None, None, "false", None, None, None, "2024-01-01 10:00", None, None, None]
    bad = list(good)
    bad[0] = 2
    bad[header.index("sub_date")] = "31.02.2024"  # no such day
    path = tmp_path / "broken.xlsx"
    path.write_bytes(workbook_bytes(header, [good, bad]))
    result = run("upload", str(path), "--channel", str(CHANNEL), "--name", "broken", "--budget", "10")
    assert result.returncode != 0
    column = openpyxl.utils.get_column_letter(header.index("sub_date") + 1)
    assert f"{column}3" in result.stderr  # header is row 1, the bad row is Excel row 3
    assert "31.02.2024" in result.stderr
    assert "the file has 1 error" in result.stderr


def test_not_a_spreadsheet_is_a_sentence(run: Run, tmp_path: Path) -> None:
    path = tmp_path / "notes.xlsx"
    path.write_text("just text")
    result = run("upload", str(path), "--channel", str(CHANNEL), "--name", "x", "--budget", "10")
    assert result.returncode == 1
    assert "error: the file is not a spreadsheet" in result.stderr


def test_export_opens_with_a_chart_and_the_rows(run: Run, uploaded: tuple[str, str], tmp_path: Path) -> None:
    report_id, _ = uploaded
    target = tmp_path / "export.xlsx"
    result = run("export", report_id, "-o", str(target))
    assert result.returncode == 0, result.stderr
    wb = openpyxl.load_workbook(target)
    assert wb.sheetnames[0] == SUMMARY_SHEET
    charts = wb[SUMMARY_SHEET]._charts
    assert len(charts) == 1
    assert isinstance(charts[0], BarChart)
    assert charts[0].type == "bar"
    assert wb.sheetnames[1] == LINKS_SHEET  # the links table, its chart of profit and cost per link
    assert [c.value for c in wb[LINKS_SHEET][1]][: len(LINK_COLUMNS)] == [column for column, _ in LINK_COLUMNS]
    assert isinstance(wb[LINKS_SHEET]._charts[0], BarChart)
    rows_sheet = wb[wb.sheetnames[2]]
    assert [c.value for c in rows_sheet[1]] == list(SALE_COLUMNS)
    assert sorted(r[0] for r in rows_sheet.iter_rows(min_row=2, max_col=1, values_only=True)) == sorted(
        int(str(r["user_id"])) for r in EXAMPLE_ROWS
    )

    csv_target = tmp_path / "export.csv"
    result = run("export", report_id, "--format", "csv", "-o", str(csv_target))
    assert result.returncode == 0, result.stderr
    table = list(csv.reader(io.StringIO(csv_target.read_text(encoding="utf-8"))))
    assert table[0][:3] == ["source_report_id", "source_name", "source_kind"]
    assert len(table) == 1 + len(EXAMPLE_ROWS)


def test_unknown_report_and_bad_token(run: Run, stack: Stack, tmp_path: Path) -> None:
    missing = run("show", "no-such-report")
    assert missing.returncode == 1
    assert "error: report not found" in missing.stderr

    other = dict(os.environ, SALESWIRE_CONFIG=str(tmp_path / "c.json"))
    cmd = saleswire_command()
    login = subprocess.run(
        [*cmd, "login", "--url", stack.gateway_url, "--token", "sw_wrong"],
        env=other, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert login.returncode == 1
    assert "the token was refused; run saleswire login" in login.stderr

    down = subprocess.run(
        [*cmd, "login", "--url", "http://127.0.0.1:9", "--token", "sw_x"],
        env=other, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert down.returncode == 1
    assert "cannot reach the gateway at http://127.0.0.1:9" in down.stderr
    assert not (tmp_path / "c.json").exists()
