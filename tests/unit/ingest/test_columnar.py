"""The column-wise path (columnar.py, bulk.py) against the row validator, on seeded random
workbooks: identical stored documents byte for byte, identical chunks and totals, and for a file
with errors the very answer of the old path (same codes, cells, cap)."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import bson
import pytest

from services.ingest.excel import ParseJob, columnar
from services.ingest.excel.answer import totals_field, totals_from_field
from services.ingest.excel.bulk import new_fold, run_columnar
from services.ingest.excel.worker import run_job
from shared.sale_chunks import pack
from tests.unit.ingest.conftest import ENGLISH_HEADER, WriteXlsx
from tests.unit.ingest.test_worker import job_dict

SUB = datetime(2024, 3, 1, 12, 0)

# Per column: values the vectorised checks take as they are, values only the row validator
# takes (so the row is sent to it and its document put back), and invalid values. Each column
# keeps one cell type (a column of two types is parsed the old way: see the mixed test).
VALID: dict[str, list[Any]] = {
    "user_id": [1.0, 123456789.0, 9_007_199_254_740_000.0, -5.0],
    "name": ["Ivan", "Ольга Петрова", None, ""],
    "product": ["Course", "Марафон", None],
    "purchase_amount": [None, 0.0, 19.99, 5.0, 1234.5, 900.01],
    "username": ["@user1", "user2", None, "@"],
    "photo_url": [None, "https://t.me/i/1.jpg", "HTTP://example.com"],
    "is_premium": [True, False, None],
    "phone_number": [None, "+7 912 345-67-89", "8 (912) 345.67.89", "+1234567"],
    "birthdate": [None, date(1990, 5, 17), datetime(1985, 1, 2, 23, 59, 59)],
    "status": [None, "lead", "funnel", "лид", "Воронка", "LEAD"],
    "sub_date": [SUB, datetime(2024, 1, 1), date(2024, 2, 2), datetime(2024, 5, 6, 7, 8, 9, 123000)],
    "unsub_date": [None, datetime(2024, 6, 1)],
    "action_date": [datetime(2024, 6, 2, 10, 0)],
    "invite_link": [None, "https://t.me/+abc", "link one"],
}
SLOW_VALID: dict[str, list[Any]] = {
    "name": ["  padded  ", "tab\t"],
    "username": ["@ spaced", " @lead"],
    "phone_number": [" +7 912 3456789 "],
    "purchase_amount": [0.30000000000000004, 12345678901234.5],
    "status": [" sale "],
    "invite_link": ["\u00a0nbsp"],
}
INVALID: dict[str, list[Any]] = {
    "user_id": [1.5, None],
    "purchase_amount": [1.234, -3.0],
    "photo_url": ["ftp://x", "not a url"],
    "phone_number": ["12ab", "+12"],
    "status": ["maybe"],
    "sub_date": [None, datetime(1850, 1, 1)],
    "unsub_date": [datetime(2000, 1, 1)],
    "name": ["x" * 3000],
}


# Issue 16's currency column (an unknown column to a release without it: ignored by both paths).
CURRENCIES: list[Any] = [None, "RUB", "usd", "R$", "₽", "EUR"]
HEADER = [*ENGLISH_HEADER, "валюта"]


def random_rows(rnd: random.Random, n: int, *, slow: bool, errors: bool) -> list[list[Any]]:
    rows: list[list[Any]] = [list(HEADER)]
    for _ in range(n):
        if rnd.random() < 0.05:
            rows.append([None] * len(HEADER))  # empty rows are skipped
            continue
        row = {name: rnd.choice(values) for name, values in VALID.items()}
        if slow and rnd.random() < 0.3:
            name = rnd.choice(list(SLOW_VALID))
            row[name] = rnd.choice(SLOW_VALID[name])
        if errors and rnd.random() < 0.1:
            name = rnd.choice(list(INVALID))
            row[name] = rnd.choice(INVALID[name])
        if row["status"] is not None and rnd.random() < 0.5:
            row["status"] = rnd.choice(["sale", "Продажа"])
            row["purchase_amount"] = row["purchase_amount"] if row["purchase_amount"] is not None else 10.0
        if row["status"] is None and rnd.random() < 0.5:
            row["action_date"] = None
        if errors and row["status"] is not None and rnd.random() < 0.03:
            row["action_date"] = None  # an error before issue 16, a row without a period after it
        currency = rnd.choice(CURRENCIES)
        if errors and rnd.random() < 0.02:
            currency = "XYZ"
        rows.append([*(row[name] for name in ENGLISH_HEADER), currency])
    # One cell of each column carries its type, so that no column comes out all empty or mixed.
    rows.append([*(VALID[name][0] if VALID[name][0] is not None else VALID[name][1] for name in ENGLISH_HEADER), "RUB"])
    rows[-1][ENGLISH_HEADER.index("status")] = "sale"
    rows[-1][ENGLISH_HEADER.index("purchase_amount")] = 1.0
    return rows


def raw_docs(path: Path) -> list[bytes]:
    data = path.read_bytes()
    out, at = [], 0
    while at < len(data):
        length = int.from_bytes(data[at : at + 4], "little")
        out.append(data[at : at + length])
        at += length
    return out


def as_text(rnd: random.Random, rows: list[list[Any]]) -> list[list[Any]]:
    """The same rows as an exporter writes them: dates, amounts, flags and ids as text."""
    out = [rows[0]]
    for row in rows[1:]:
        cells = list(row)
        for name in ("sub_date", "unsub_date", "action_date", "birthdate"):
            i = ENGLISH_HEADER.index(name)
            value = cells[i]
            if isinstance(value, datetime):
                cells[i] = rnd.choice([value.strftime("%Y-%m-%d %H:%M"), value.strftime("%d.%m.%Y %H:%M:%S")])
            elif isinstance(value, date):
                cells[i] = value.strftime("%d.%m.%Y")
        i = ENGLISH_HEADER.index("purchase_amount")
        if isinstance(cells[i], float):
            cells[i] = rnd.choice([repr(cells[i]), f"{cells[i]:,.2f}".replace(",", " ").replace(".", ",")])
        i = ENGLISH_HEADER.index("is_premium")
        if isinstance(cells[i], bool):
            cells[i] = rnd.choice(["да", "нет", "TRUE", "0"]) if cells[i] else rnd.choice(["нет", "false", "No"])
        i = ENGLISH_HEADER.index("user_id")
        if isinstance(cells[i], float):
            cells[i] = rnd.choice([str(int(cells[i])), f" {int(cells[i])} "])
        out.append(cells)
    return out


@pytest.mark.parametrize("seed", range(24))
def test_columnar_path_equals_the_row_validator(
    seed: int, write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    rnd = random.Random(seed)
    errors = seed % 3 == 2
    rows = random_rows(rnd, 150, slow=seed % 3 == 1, errors=errors)
    if seed >= 12:
        rows = as_text(rnd, rows)
    path = write_xlsx(rows)
    old_job = job_dict(make_job(path, spool_path=tmp_path / "old.bson"), max_errors=5)
    new_job = job_dict(make_job(path, spool_path=tmp_path / "new.bson"), max_errors=5)
    old = run_job(old_job, columnar=False)
    new = run_job(new_job)
    assert new == old
    if not old["ok"]:
        # A file with errors is never decided column-wise: its answer is the old path's own.
        assert run_columnar(new_job, path, "xlsx") is None
        assert old["total_errors"] >= 1
        return
    assert run_columnar(new_job, path, "xlsx") is not None, "a plain valid file takes the column-wise path"
    old_docs, new_docs = raw_docs(tmp_path / "old.bson"), raw_docs(tmp_path / "new.bson")
    assert new_docs == old_docs
    decoded = [bson.decode(d, codec_options=bson.CodecOptions(tz_aware=True)) for d in old_docs]
    sheet = columnar.read_sheet(path, "xlsx")
    assert sheet is not None
    valid = columnar.validate_sheet(sheet, new_job, UTC)
    assert valid is not None
    expected_chunks = {c["_id"]: bson.encode(c) for c in pack(decoded)}
    got_chunks = {bson.decode(c)["_id"]: c for batch in columnar.chunk_batches(valid, batch_chunks=1) for c in batch}
    assert got_chunks == expected_chunks
    fold = new_fold(new_job)
    for row in decoded:
        fold.add(row)
    # The worker's answer carries the totals as a stored document: they come back as folded.
    assert totals_from_field(totals_field(fold.result())) == fold.result()


def test_a_column_of_two_types_is_parsed_the_old_way(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    rows = random_rows(random.Random(7), 20, slow=False, errors=False)
    rows[3][ENGLISH_HEADER.index("user_id")] = "123"  # text among numbers
    path = write_xlsx(rows)
    job = job_dict(make_job(path))
    assert run_columnar(job, path, "xlsx") is None
    assert run_job(job)["ok"] is True


def test_other_shapes_are_left_to_the_old_path(write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]) -> None:
    rows = random_rows(random.Random(3), 10, slow=False, errors=False)
    below = write_xlsx(rows, start_row=2)  # a blank row above the header
    assert run_columnar(job_dict(make_job(below)), below, "xlsx") is None
    assert run_job(job_dict(make_job(below)))["ok"] is True
    plain = write_xlsx(rows)
    assert run_columnar(job_dict(make_job(plain), timezone="Europe/Moscow"), plain, "xlsx") is None
    twice = write_xlsx([[*rows[0], "user_id"], *[[*r, 1.0] for r in rows[1:]]])
    answer = run_job(job_dict(make_job(twice)))
    assert run_columnar(job_dict(make_job(twice)), twice, "xlsx") is None
    assert answer["errors"][0]["code"] == "duplicate_column"
    shifted = write_xlsx(rows, start_col=3)  # cell references start at column C
    old = run_job(job_dict(make_job(shifted)), columnar=False)
    assert run_columnar(job_dict(make_job(shifted)), shifted, "xlsx") is not None
    assert run_job(job_dict(make_job(shifted))) == old


def test_row_ids_follow_sheet_rows_past_empty_rows(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob], tmp_path: Path
) -> None:
    rows = random_rows(random.Random(11), 5, slow=False, errors=False)
    rows.insert(3, [None] * len(HEADER))
    path = write_xlsx(rows)
    job = job_dict(make_job(path))
    assert run_columnar(job, path, "xlsx") is not None
    ids = [bson.decode(d)["row"] for d in raw_docs(Path(job["spool_path"]))]
    assert ids == [r + 1 for r in range(1, len(rows)) if any(v is not None for v in rows[r])]


def test_a_sheet_over_the_caps_is_refused_in_the_old_words(
    write_xlsx: WriteXlsx, make_job: Callable[..., ParseJob]
) -> None:
    rows = random_rows(random.Random(5), 30, slow=False, errors=False)
    for path in (write_xlsx(rows), write_xlsx(rows, start_col=4)):
        for caps in ({"max_rows": 20}, {"max_columns": 10}, {"max_rows": len(rows) - 2}):
            # As the runner sends it: sniffed already (this file's <dimension> would be refused there).
            job = job_dict(make_job(path), format="xlsx", **caps)
            fast = run_columnar(job, path, "xlsx")
            assert fast is not None and fast["kind"] == "sheet_too_large"
            assert fast == run_job(job, columnar=False)
