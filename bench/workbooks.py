"""Deterministic benchmark workbooks: valid upload files of 10k / 100k / 1M rows.

15 columns: the 14 columns of SPEC §3 (headers mixed English and Russian, order shuffled) plus
one unknown column that the parser must ignore. Cached under bench/data/ (git-ignored).

Three layouts (FIELD-NOTES: readers differ between them):
  stream  openpyxl write_only: inline strings, no <dimension> (like many exporters)
  excel   openpyxl normal mode: a <dimension>, but openpyxl 3.1 writes inline strings here too
          (builds the whole sheet in memory first: ≈ 4 GB and 25 min at 1M rows on this machine)
  sst     the excel layout with its strings moved to a shared-strings table (`t="s"` cells), as
          Excel itself writes a workbook: the Excel-like layout of issue 19's parse target

    .venv/bin/python -m bench.workbooks 100000 [--layout excel]   # prints the path
"""

from __future__ import annotations

import argparse
import random
import re
import zipfile
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 20240131
HEADERS = [
    "Дата подписки",
    "user_id",
    "Имя",
    "product",
    "purchase_amount",
    "Юзернейм",
    "photo_url",
    "Премиум",
    "phone_number",
    "birthdate",
    "Статус",
    "unsub_date",
    "action_date",
    "invite_link",
    "notes",
]
PRODUCTS = ["Course Basic", "Course Pro", "Mentoring", "Марафон", "Consultation"]
FIRST_NAMES = ["Ivan", "Maria", "Olga", "Pedro", "Ana", "Алексей", "Ольга", "John", "Sofia", "Lucas"]
STATUSES = ["", "", "", "funnel", "lead", "sale", "продажа", "лид"]


def _row(rnd: random.Random, i: int) -> list[Any]:
    sub = datetime(2024, 1, 1) + timedelta(seconds=rnd.randrange(0, 365 * 86400))
    status = rnd.choice(STATUSES)
    action = sub + timedelta(seconds=rnd.randrange(60, 30 * 86400)) if status else None
    unsub = sub + timedelta(seconds=rnd.randrange(3600, 60 * 86400)) if rnd.random() < 0.2 else None
    amount = round(rnd.uniform(5, 900), 2) if status in ("sale", "продажа") else None
    has_username = rnd.random() < 0.7
    return [
        sub,
        100_000_000 + rnd.randrange(0, 6_000_000_000),
        f"{rnd.choice(FIRST_NAMES)} {i}",
        rnd.choice(PRODUCTS),
        amount,
        f"@user{i}" if has_username else None,
        f"https://t.me/i/userpic/320/{i}.jpg" if rnd.random() < 0.5 else None,
        rnd.random() < 0.1,
        f"+7 9{rnd.randrange(10, 99)} {rnd.randrange(100, 999)}-{rnd.randrange(10, 99)}-{rnd.randrange(10, 99)}"
        if rnd.random() < 0.4
        else None,
        date(1970, 1, 1) + timedelta(days=rnd.randrange(0, 40 * 365)) if rnd.random() < 0.3 else None,
        status or None,
        unsub,
        action,
        f"https://t.me/+inv{rnd.randrange(0, 50)}",
        "note" if rnd.random() < 0.05 else None,
    ]


def write_workbook(path: Path, rows: int, seed: int = SEED, layout: str = "stream") -> Path:
    from openpyxl import Workbook

    rnd = random.Random(seed)
    wb = Workbook(write_only=layout == "stream")
    if layout == "stream":
        ws = wb.create_sheet("Продажи")
    else:
        ws = wb.active
        ws.title = "Продажи"
    ws.append(HEADERS)
    for i in range(rows):
        ws.append(_row(rnd, i))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    wb.save(tmp)
    tmp.rename(path)
    return path


LAYOUTS = ("stream", "excel", "sst")
_INLINE_CELL = re.compile(r'<c r="([A-Z]+\d+)" t="inlineStr"><is><t>([^<]*)</t></is></c>')


def shared_strings(source: Path, target: Path) -> Path:
    """`source` rewritten with every inline string cell in a shared-strings table, the way Excel
    stores text (each distinct string once, cells point at it by index)."""
    index: dict[str, int] = {}
    cells = 0

    def shared(match: re.Match[str]) -> str:
        nonlocal cells
        cells += 1
        at = index.setdefault(match.group(2), len(index))
        return f'<c r="{match.group(1)}" t="s"><v>{at}</v></c>'

    with zipfile.ZipFile(source) as zin:
        sheet = _INLINE_CELL.sub(shared, zin.read("xl/worksheets/sheet1.xml").decode())
        # The strings are copied as they were escaped inside <t>, so they need no escaping again.
        table = "".join(f"<si><t>{text}</t></si>" for text in index)
        sst = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<sst xmlns="http://schemas.openxmlformats.org'
            f'/spreadsheetml/2006/main" count="{cells}" uniqueCount="{len(index)}">{table}</sst>'
        )
        tmp = target.with_suffix(".tmp")
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
            for item in zin.infolist():
                data = zin.read(item.filename)
                if item.filename == "xl/worksheets/sheet1.xml":
                    data = sheet.encode()
                elif item.filename == "xl/_rels/workbook.xml.rels":
                    data = data.replace(b"</Relationships>", _SST_RELATIONSHIP + b"</Relationships>")
                elif item.filename == "[Content_Types].xml":
                    data = data.replace(b"</Types>", _SST_CONTENT_TYPE + b"</Types>")
                zout.writestr(item.filename, data)
            zout.writestr("xl/sharedStrings.xml", sst)
    tmp.rename(target)
    return target


_SST_RELATIONSHIP = (
    b'<Relationship Id="rIdSharedStrings" Target="sharedStrings.xml" '
    b'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings"/>'
)
_SST_CONTENT_TYPE = (
    b'<Override PartName="/xl/sharedStrings.xml" '
    b'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
)


def workbook(rows: int, layout: str = "stream") -> Path:
    """Path of the cached benchmark workbook with `rows` data rows (generated on first use)."""
    suffix = "" if layout == "stream" else f"_{layout}"
    path = DATA_DIR / f"sales_{rows}{suffix}.xlsx"
    if not path.exists():
        if layout == "sst":
            shared_strings(workbook(rows, "excel"), path)
        else:
            write_workbook(path, rows, layout=layout)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", type=int)
    parser.add_argument("--layout", choices=LAYOUTS, default="stream")
    args = parser.parse_args()
    print(workbook(args.rows, args.layout))


if __name__ == "__main__":
    main()
