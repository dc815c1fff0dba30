"""Deterministic benchmark workbooks: valid upload files of 10k / 100k / 1M rows.

15 columns: the 14 columns of SPEC §3 (headers mixed English and Russian, order shuffled) plus
one unknown column that the parser must ignore. Cached under bench/data/ (git-ignored).

Two layouts (FIELD-NOTES: readers differ between them):
  stream  openpyxl write_only: inline strings, no <dimension> (like many exporters)
  excel   openpyxl normal mode: shared-strings table and a <dimension>, like Excel itself
          (builds the whole sheet in memory first: use it up to ~100k rows)

    .venv/bin/python -m bench.workbooks 100000 [--layout excel]   # prints the path
"""

from __future__ import annotations

import argparse
import random
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


LAYOUTS = ("stream", "excel")


def workbook(rows: int, layout: str = "stream") -> Path:
    """Path of the cached benchmark workbook with `rows` data rows (generated on first use)."""
    suffix = "" if layout == "stream" else f"_{layout}"
    path = DATA_DIR / f"sales_{rows}{suffix}.xlsx"
    if not path.exists():
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
