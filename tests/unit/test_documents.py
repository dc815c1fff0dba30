"""The declarations in shared/ of the documents several services touch: the chunk builders give
the declared chunk, the states and figures are the ones SPEC and the issue-16 contract name, and
the gateway (response models, export) takes its figures from the declaration."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from decimal import Decimal
from typing import get_args

from bson import Decimal128, Int64
from openpyxl import load_workbook

from services.analytics.metrics import compute_metrics
from services.gateway.export import LINK_COLUMNS, SUMMARY_SHEET, build_report_workbook
from services.gateway.schemas import LinkSchema, ReportSchema
from shared import reports, sale_chunks, source_reports
from shared.sale_rows import ACTION_STATUSES, SALE_ROW_KEYS, SaleRow, SaleStatus
from shared.totals import TotalsFold
from tests.infra import ROOT
from tests.shapes import mismatches

CYRILLIC = re.compile("[а-яё]", re.IGNORECASE)


def _row(n: int, status: str | None = "sale", source_report_id: str = "src") -> SaleRow:
    sub = datetime(2024, 1, 1, tzinfo=UTC)
    return {
        "_id": f"{source_report_id}:{n}", "report_id": "rep", "source_report_id": source_report_id,
        "channel_id": Int64(-100), "creator_id": 5, "source": "excel", "row": n, "user_id": Int64(n),
        "customer_key": None, "name": None, "product": "Course", "username": None, "photo_url": None,
        "phone_number": None, "invite_link": None, "is_premium": False, "birthdate": None,
        "status": status,  # type: ignore[typeddict-item]  # the statuses below are all declared ones
        "purchase_amount": Decimal128("5.00"), "currency": "RUB", "sub_date": sub, "unsub_date": None,
        "action_date": sub, "action_period_ms": Int64(0), "extra": None,
    }  # fmt: skip


def test_a_hand_written_row_fits_the_row_declaration() -> None:
    # The checker itself: a full row fits, a row with a key missing or of a wrong type does not.
    row = _row(1)
    assert mismatches(row, SaleRow) == []
    broken = dict(row, channel_id="-100")
    del broken["currency"]
    assert mismatches(broken, SaleRow) == [
        "missing key 'currency'",
        "channel_id='-100' is not <class 'bson.int64.Int64'>",
    ]
    assert len(SALE_ROW_KEYS) == 25


def test_packed_and_single_chunks_fit_the_chunk_declaration() -> None:
    rows = [_row(n, status) for n, status in enumerate(["sale", "lead", None, "sale", "funnel"] * 30, start=2)]
    chunks = sale_chunks.pack(rows, chunk_rows=20)
    assert sum(len(c["rows"]) for c in chunks) == len(rows)
    for chunk in [*chunks, sale_chunks.single(_row(1, "refunded"))]:
        assert mismatches(chunk, sale_chunks.SaleChunk) == [], chunk["_id"]
    assert "seq" not in sale_chunks.single(_row(1))


def test_statuses_and_states_are_the_declared_ones() -> None:
    assert set(ACTION_STATUSES) == {"lead", "sale", "funnel"} <= set(get_args(SaleStatus))
    assert set(get_args(source_reports.SourceStatus)) == {
        "pending", "processing", "storing", "ingested", "success", "failed",
    }  # fmt: skip
    assert {"ingested", "success", "failed"} == source_reports.FINAL_SOURCE_STATES
    assert set(get_args(reports.ReportStatus)) == {"pending", "processing", "success", "failed"}
    assert {"success", "failed"} == reports.FINAL_REPORT_STATES


def test_every_status_literal_in_the_code_is_a_declared_one() -> None:
    # Rows, source reports and reports all keep their state in `status`: any literal the code
    # writes or compares there must be declared (the health answer's "alive" is not a document).
    declared = (
        set(get_args(SaleStatus)) | set(get_args(source_reports.SourceStatus)) | set(get_args(reports.ReportStatus))
    )
    pattern = re.compile(r"""["']status["']\)?\s*(?::|==|!=)\s*["']([a-z_]+)["']""")
    found = {
        (str(path.relative_to(ROOT)), literal)
        for folder in ("shared", "services")
        for path in (ROOT / folder).rglob("*.py")
        for literal in pattern.findall(path.read_text())
    }
    assert found, "the pattern finds nothing: it no longer matches how the code writes states"
    assert {(path, literal) for path, literal in found if literal not in declared | {"alive", "status"}} == set()


def test_every_figure_has_words_in_english_and_russian() -> None:
    for field in (*reports.REPORT_METRICS, *reports.LINK_FIELDS):
        assert field.label_en and field.definition_en and not CYRILLIC.search(field.label_en), field.key
        assert CYRILLIC.search(field.label_ru) or field.label_ru == field.label_en == "ROMI", field.key
        assert CYRILLIC.search(field.definition_ru), field.key
        assert field.unit == reports.UNITS[field.kind]
    assert len(set(reports.REPORT_METRIC_NAMES)) == len(reports.REPORT_METRIC_NAMES)


def test_the_figures_are_the_seed_and_issue_16_ones() -> None:
    assert set(reports.SEED_METRIC_NAMES) == {
        "subs", "funnel", "leads", "sales", "profit", "romi", "cpc", "cpf", "cpl", "cac", "cr_funnel",
        "cr_leads", "cr_sales", "avg_funnel", "avg_lead", "avg_sale", "premium_percent", "username_percent",
    }  # fmt: skip
    assert set(reports.REPORT_METRIC_NAMES) - set(reports.SEED_METRIC_NAMES) == {
        "unsubs", "net_subs", "unsub_percent", "cpc_net", "retention_d1", "retention_d7", "retention_d30",
        "profit_by_currency", "warnings",
    }  # fmt: skip
    # Contract 16: the links table's entries, exactly these fields in this order.
    assert reports.LINK_FIELD_NAMES == (
        "invite_link", "subs", "unsubs", "net_subs", "funnel", "leads", "sales", "buyers", "profit", "cost",
        "romi", "cpc", "cpc_net", "cac", "cr_sales", "retention_d1", "retention_d7", "retention_d30",
    )  # fmt: skip
    assert {"subs", "funnel", "leads", "sales", "unsubs", "net_subs"} == reports.COUNT_METRIC_NAMES


def test_analytics_computes_exactly_the_declared_figures_and_link_fields() -> None:
    fold = TotalsFold()
    for row in (_row(1), _row(2, "lead"), _row(3, None)):
        fold.add(row)
    figures = compute_metrics(Decimal(100), fold.result())
    assert set(figures.fields) == set(reports.REPORT_METRIC_NAMES) | {"as_of"}
    assert [tuple(entry) for entry in figures.links] == [reports.LINK_FIELD_NAMES]


def test_the_gateway_takes_names_words_and_order_of_the_figures_from_the_declaration() -> None:
    assert set(reports.REPORT_METRIC_NAMES) <= set(ReportSchema.model_fields)
    shown = [name for name in ReportSchema.model_fields if name in reports.REPORT_METRIC_NAMES]
    assert shown == list(reports.REPORT_METRIC_NAMES)
    for metric in reports.REPORT_METRICS:
        field = ReportSchema.model_fields[metric.key]
        assert field.title == metric.label_en
        assert field.description is not None and field.description.startswith(metric.definition_en)
    assert list(LinkSchema.model_fields) == list(reports.LINK_FIELD_NAMES)
    assert [column for column, _ in LINK_COLUMNS] == list(reports.LINK_FIELD_NAMES)
    # The export's Summary: one row per number figure, in order, with its label, unit and definitions.
    summary = load_workbook(io.BytesIO(build_report_workbook({"name": "r"}, [])), read_only=True)[SUMMARY_SHEET]
    labels = {f"{m.label_en} ({m.key})": m for m in reports.NUMBER_METRICS}
    rows = [row for row in summary.iter_rows(values_only=True) if row and row[0] in labels]
    assert [row[0] for row in rows] == list(labels)
    assert [(row[2] or "", row[3], row[4]) for row in rows] == [
        (m.unit.en, m.definition_en, m.definition_ru) for m in reports.NUMBER_METRICS
    ]


def test_a_figure_reads_as_the_api_shows_it() -> None:
    subs, profit = reports.SEED_METRICS[0], reports.SEED_METRICS[4]
    assert (subs.key, profit.key) == ("subs", "profit")
    assert reports.metric_value({"subs": 12.0}, subs) == 12
    assert reports.metric_value({"profit": Decimal128("10.005")}, profit) == Decimal("10.01")
    assert reports.metric_value({"profit": "2.344"}, profit) == Decimal("2.34")
    assert reports.metric_value({"profit": "n/a"}, profit) is None
    assert reports.metric_value({}, profit) is None
    assert reports.to_number(True) is None
