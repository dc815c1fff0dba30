"""Random but reproducible campaigns, a fast raw .xlsx writer for them, and the SPEC §4 metrics
computed independently in plain Python (the reference every fault test compares against)."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from xml.sax.saxutils import escape

HEADERS = ["user_id", "name", "product", "purchase_amount", "username", "is_premium", "status", "sub_date",
           "action_date", "invite_link"]  # fmt: skip
BASE = datetime(2024, 1, 1, 8, 0)


@dataclass(frozen=True)
class Row:
    user_id: int
    name: str
    product: str | None
    amount: Decimal | None
    username: str
    premium: bool
    status: str | None
    sub_date: datetime
    action_date: datetime | None

    def cells(self) -> list[Any]:
        return [
            self.user_id,
            self.name,
            self.product,
            None if self.amount is None else str(self.amount),
            self.username,
            "true" if self.premium else "false",
            self.status,
            self.sub_date.strftime("%Y-%m-%d %H:%M"),
            None if self.action_date is None else self.action_date.strftime("%Y-%m-%d %H:%M"),
            None,
        ]


def make_rows(n: int, seed: int) -> list[Row]:
    """`n` rows over about n/2 users (so users repeat); user attributes are stable per user."""
    rnd = random.Random(seed)
    users = max(1, n // 2)
    rows: list[Row] = []
    for _ in range(n):
        uid = 5_000_000_000 + rnd.randrange(users)
        urnd = random.Random(uid * 31 + seed)
        premium = urnd.random() < 0.3
        username = f"user{uid}" if urnd.random() < 0.6 else ""
        status = rnd.choice(["sale", "lead", "funnel", None, None])
        sub = BASE + timedelta(minutes=rnd.randrange(60 * 24 * 30))
        action = sub + timedelta(minutes=rnd.randrange(1, 60 * 24 * 10)) if status else None
        amount = Decimal(rnd.randrange(100, 500_000)) / 100 if status == "sale" else None
        product = rnd.choice(["Курс", "Mentoring", None])
        rows.append(Row(uid, f"Имя {uid % 1000}", product, amount, username, premium, status, sub, action))
    return rows


def _cell(ref: str, value: Any) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, int):
        return f'<c r="{ref}"><v>{value}</v></c>'
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(str(value))}</t></is></c>'


def column_letter(index: int) -> str:
    """0 → A, 25 → Z, 26 → AA, 16383 → XFD."""
    letters = ""
    index += 1
    while index:
        index, rem = divmod(index - 1, 26)
        letters = chr(65 + rem) + letters
    return letters


def sheet_xml(headers: Sequence[Any], rows: Iterable[Sequence[Any]]) -> Iterable[str]:
    letters = [column_letter(i) for i in range(max(len(headers), 1))]
    yield '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    yield '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    yield '<row r="1">' + "".join(_cell(f"{letters[i]}1", h) for i, h in enumerate(headers)) + "</row>"
    for r, row in enumerate(rows, start=2):
        yield f'<row r="{r}">' + "".join(_cell(f"{letters[i]}{r}", v) for i, v in enumerate(row)) + "</row>"
    yield "</sheetData></worksheet>"


CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
    '<Override PartName="/xl/sharedStrings.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
    "</Types>"
)
ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="xl/workbook.xml"/></Relationships>'
)
WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'worksheet" Target="worksheets/sheet1.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'sharedStrings" Target="sharedStrings.xml"/></Relationships>'
)
EMPTY_SST = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="0" uniqueCount="0"/>'
)


def xlsx_parts(
    sheet: Iterable[str | bytes],
    *,
    workbook: str = WORKBOOK,
    workbook_rels: str = WORKBOOK_RELS,
    shared_strings: Iterable[str | bytes] = (EMPTY_SST,),
    extra: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
    level: int = 1,
) -> bytes:
    """A workbook assembled from raw parts, the sheet and shared strings streamed in pieces."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression, compresslevel=level) as zf:
        zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", ROOT_RELS)
        zf.writestr("xl/workbook.xml", workbook)
        zf.writestr("xl/_rels/workbook.xml.rels", workbook_rels)
        for name, parts in (("xl/worksheets/sheet1.xml", sheet), ("xl/sharedStrings.xml", shared_strings)):
            with zf.open(name, "w", force_zip64=True) as fh:
                for part in parts:
                    fh.write(part.encode() if isinstance(part, str) else part)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return out.getvalue()


def campaign_xlsx(rows: Sequence[Row]) -> bytes:
    return xlsx_parts(sheet_xml(HEADERS, (r.cells() for r in rows)))


CENT = Decimal("0.01")


def _q(value: Decimal | None) -> float | None:
    return None if value is None else float(value.quantize(CENT, rounding=ROUND_HALF_UP))


def _div(a: Decimal | int, b: Decimal | int, scale: int = 1) -> Decimal | None:
    return None if b == 0 else Decimal(a) * scale / Decimal(b)


def reference_metrics(rows: Sequence[Row], budget: Decimal) -> dict[str, Any]:
    """SPEC §4, literally: U = distinct users; counts by status; ratios null on zero divisors."""
    users = {r.user_id for r in rows}
    by_status = {s: [r for r in rows if r.status == s] for s in ("funnel", "lead", "sale")}
    subs = len(users)
    funnel, leads, sales = (len(by_status[s]) for s in ("funnel", "lead", "sale"))
    profit = sum((r.amount or Decimal(0) for r in by_status["sale"]), Decimal(0))
    buyers = len({r.user_id for r in by_status["sale"]})
    premium = len({r.user_id for r in rows if r.premium})
    named = len({r.user_id for r in rows if r.username})

    def avg(status: str) -> float | None:
        periods = [
            Decimal((r.action_date - r.sub_date).total_seconds()) / 86400
            for r in by_status[status]
            if r.action_date is not None
        ]
        return _q(_div(sum(periods, Decimal(0)), len(periods))) if periods else None

    return {
        "subs": subs, "funnel": funnel, "leads": leads, "sales": sales, "profit": _q(profit),
        "romi": _q(_div(profit - budget, budget, 100)), "cpc": _q(_div(budget, subs)),
        "cpf": _q(_div(budget, funnel)), "cpl": _q(_div(budget, leads)), "cac": _q(_div(budget, buyers)),
        "cr_funnel": _q(_div(funnel, subs, 100)), "cr_leads": _q(_div(leads, subs, 100)),
        "cr_sales": _q(_div(sales, subs, 100)), "avg_funnel": avg("funnel"), "avg_lead": avg("lead"),
        "avg_sale": avg("sale"), "premium_percent": _q(_div(premium, subs, 100)),
        "username_percent": _q(_div(named, subs, 100)),
    }  # fmt: skip


def metrics_of(report: dict[str, Any]) -> dict[str, Any]:
    keys = reference_metrics([], Decimal(1)).keys()
    return {k: report.get(k) for k in keys}
