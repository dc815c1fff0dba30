"""Generators of malformed and hostile workbooks. Each case says which answers are acceptable:
a broken or hostile file must be refused (409/413/415); a file that is strange but legitimately
valid (formulas with cached values, merged cells, dates in 9999) may also be accepted (200)."""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache

from tests.reliability.campaign import (
    CONTENT_TYPES,
    HEADERS,
    ROOT_RELS,
    WORKBOOK,
    WORKBOOK_RELS,
    column_letter,
    make_rows,
    sheet_xml,
    xlsx_parts,
)

REFUSED = frozenset({409, 413, 415})
MAYBE_VALID = REFUSED | {200}
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'


@dataclass(frozen=True)
class Case:
    name: str
    content: bytes
    allowed: frozenset[int]


def _valid_rows(n: int, seed: int) -> list[list[object]]:
    return [r.cells() for r in make_rows(n, seed)]


@cache
def valid_workbook(seed: int = 0) -> bytes:
    return xlsx_parts(sheet_xml(HEADERS, _valid_rows(20, seed)))


def _header_row() -> str:
    return '<row r="1">' + "".join(
        f'<c r="{column_letter(i)}1" t="inlineStr"><is><t>{h}</t></is></c>' for i, h in enumerate(HEADERS)
    ) + "</row>"  # fmt: skip


def _sheet(body: str, extra_after: str = "", dimension: str = "") -> Iterator[str]:
    yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}>{dimension}<sheetData>'
    yield body
    yield f"</sheetData>{extra_after}</worksheet>"


# --- the families --------------------------------------------------------------------------


def truncated(rnd: random.Random) -> Case:
    data = valid_workbook(rnd.randrange(3))
    cut = rnd.randrange(8, len(data) - 1)
    return Case(f"truncated@{cut}", data[:cut], REFUSED)


def wrong_magic(rnd: random.Random) -> Case:
    options = [
        b"",
        b"%PDF-1.7\n" + rnd.randbytes(2000),
        b"\x89PNG\r\n\x1a\n" + rnd.randbytes(500),
        "user_id,name\n1,Анна\n".encode("cp1251"),
        b"<html><body>not a sheet</body></html>",
        b"PK\x03\x04" + rnd.randbytes(rnd.randrange(10, 5000)),
        b"PK\x05\x06" + b"\x00" * 18,
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + rnd.randbytes(rnd.randrange(100, 5000)),
        rnd.randbytes(rnd.randrange(1, 4000)),
        b"\x1f\x8b\x08" + rnd.randbytes(200),
    ]
    i = rnd.randrange(len(options))
    return Case(f"wrong-magic#{i}", options[i], REFUSED)


def flipped_bytes(rnd: random.Random) -> Case:
    data = bytearray(valid_workbook(rnd.randrange(3)))
    for _ in range(rnd.randrange(1, 30)):
        data[rnd.randrange(len(data))] = rnd.randrange(256)
    return Case("flipped-bytes", bytes(data), MAYBE_VALID)


@cache
def _zip_bomb(mb: int) -> bytes:
    def parts() -> Iterator[str]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}><sheetData>'
        yield _header_row()
        filler = " " * (1024 * 1024)  # whitespace between rows: well-formed, and compresses ~1000:1
        for _ in range(mb):
            yield filler
        yield "</sheetData></worksheet>"

    return xlsx_parts(parts(), level=9)


def zip_bomb(rnd: random.Random) -> Case:
    mb = rnd.choice([300, 1200])
    return Case(f"zip-bomb-{mb}MB", _zip_bomb(mb), REFUSED)


@cache
def _empty_rows(n: int, dimension: bool) -> bytes:
    def parts() -> Iterator[str]:
        dim = f'<dimension ref="A1:J{n}"/>' if dimension else ""
        yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet {NS}>{dim}<sheetData>'
        yield _header_row()
        chunk = 10_000
        for start in range(2, n + 1, chunk):
            yield "".join(f'<row r="{r}"/>' for r in range(start, min(start + chunk, n + 1)))
        yield "</sheetData></worksheet>"

    return xlsx_parts(parts(), level=9)


def empty_rows(rnd: random.Random) -> Case:
    n = 10_000_000 if rnd.random() < 0.5 else 1_048_576
    return Case(f"{n}-empty-rows", _empty_rows(n, n > 2_000_000), REFUSED)


@cache
def _shared_string_bomb(strings: int, length: int) -> bytes:
    def sst() -> Iterator[str]:
        yield f'<?xml version="1.0" encoding="UTF-8"?><sst {NS} count="{strings}" uniqueCount="{strings}">'
        s = "<si><t>" + "x" * length + "</t></si>"
        for _ in range(strings):
            yield s
        yield "</sst>"

    body = _header_row() + '<row r="2"><c r="A2" t="s"><v>0</v></c></row>'
    return xlsx_parts(_sheet(body), shared_strings=sst(), level=9)


def shared_string_bomb(rnd: random.Random) -> Case:
    strings, length = rnd.choice([(2_000_000, 10), (300, 1_000_000), (1, 200_000_000)])
    return Case(f"sst-bomb-{strings}x{length}", _shared_string_bomb(strings, length), REFUSED)


def formulas(rnd: random.Random) -> Case:
    cached = rnd.random() < 0.5
    rows = []
    for r in range(2, 8):
        value = "<v>7</v>" if cached else ""
        rows.append(
            f'<row r="{r}"><c r="A{r}"><f>1000+{r}</f>{value}</c>'
            f'<c r="H{r}" t="inlineStr"><is><t>2024-01-0{r}</t></is></c>'
            f'<c r="G{r}" t="str"><f>"lead"</f>{"<v>lead</v>" if cached else ""}</c>'
            f'<c r="I{r}" t="inlineStr"><is><t>2024-01-0{r + 1}</t></is></c></row>'
        )
    return Case(f"formulas-cached={cached}", xlsx_parts(_sheet(_header_row() + "".join(rows))), MAYBE_VALID)


def merged_cells(rnd: random.Random) -> Case:
    rows = _valid_rows(6, rnd.randrange(100))
    merges = '<mergeCells count="2"><mergeCell ref="A2:A4"/><mergeCell ref="B2:J2"/></mergeCells>'
    parts = list(sheet_xml(HEADERS, rows))
    parts[-1] = "</sheetData>" + merges + "</worksheet>"
    return Case("merged-cells", xlsx_parts(parts), MAYBE_VALID)


def hidden_first_sheet(rnd: random.Random) -> Case:
    workbook = WORKBOOK.replace('sheetId="1" r:id="rId1"/>', 'sheetId="1" state="hidden" r:id="rId1"/>')
    sheet = sheet_xml(HEADERS, _valid_rows(5, rnd.randrange(100)))
    return Case("hidden-first-sheet", xlsx_parts(sheet, workbook=workbook), MAYBE_VALID)


def wide(rnd: random.Random) -> Case:
    cols = rnd.choice([16_384, 5_000, 65])
    cells = "".join(f'<c r="{column_letter(i)}1"><v>{i}</v></c>' for i in range(cols))
    far = rnd.random() < 0.5
    extra = '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>' if far else ""
    return Case(f"{cols}-columns-far={far}", xlsx_parts(_sheet(f'<row r="1">{cells}</row>{extra}')), REFUSED)


def far_corner(rnd: random.Random) -> Case:
    body = _header_row() + '<row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    dim = '<dimension ref="A1:XFD1048576"/>' if rnd.random() < 0.5 else ""
    return Case("far-corner", xlsx_parts(_sheet(body, dimension=dim)), REFUSED)


def non_utf8(rnd: random.Random) -> Case:
    kind = rnd.randrange(3)
    rows = "".join(
        f'<row r="{r}"><c r="A{r}"><v>{r}</v></c><c r="B{r}" t="inlineStr"><is><t>Имя</t></is></c>'
        f'<c r="H{r}" t="inlineStr"><is><t>2024-01-01</t></is></c></row>'
        for r in range(2, 5)
    )
    text = f"<worksheet {NS}><sheetData>{_header_row()}{rows}</sheetData></worksheet>"
    if kind == 0:
        data = b'<?xml version="1.0" encoding="windows-1251"?>' + text.encode("cp1251")
    elif kind == 1:
        data = b'<?xml version="1.0" encoding="UTF-8"?>' + text.encode("cp1251")  # lies about its encoding
    else:
        data = '<?xml version="1.0" encoding="UTF-16"?>'.encode("utf-16") + text.encode("utf-16")[2:]
    return Case(f"non-utf8#{kind}", xlsx_parts([data]), MAYBE_VALID)


def huge_cell(rnd: random.Random) -> Case:
    size = rnd.choice([32_767, 1_000_000, 2_500_000])
    big = "Ж" * size
    body = (
        _header_row()
        + f'<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>{big}</t></is></c>'
        + '<c r="H2" t="inlineStr"><is><t>2024-01-01</t></is></c></row>'
    )
    return Case(f"huge-cell-{size}", xlsx_parts(_sheet(body), level=9), MAYBE_VALID)


def odd_dates(rnd: random.Random) -> Case:
    values = rnd.choice(
        [("2958465", "9999-12-31"), ("1", "1899-12-31"), ("60", "1900-02-29"), ("-5", "0000-00-00"), ("1e308", "x")]
    )
    serial, text = values
    body = (
        _header_row()
        + f'<row r="2"><c r="A2"><v>1</v></c><c r="H2"><v>{serial}</v></c></row>'
        + f'<row r="3"><c r="A3"><v>2</v></c><c r="H3" t="inlineStr"><is><t>{text}</t></is></c></row>'
    )
    return Case(f"dates-{serial}-{text}", xlsx_parts(_sheet(body)), MAYBE_VALID)


def entity_expansion(rnd: random.Random) -> Case:
    lol = '<!DOCTYPE lolz [<!ENTITY lol "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    ) + "]>"  # fmt: skip
    external = '<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    doctype, ref = (lol, "&lol9;") if rnd.random() < 0.5 else (external, "&xxe;")
    data = (
        f'<?xml version="1.0"?>{doctype}<worksheet {NS}><sheetData>{_header_row()}'
        f'<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="inlineStr"><is><t>{ref}</t></is></c>'
        '<c r="H2" t="inlineStr"><is><t>2024-01-01</t></is></c></row></sheetData></worksheet>'
    )
    return Case(f"entities-{ref}", xlsx_parts([data]), MAYBE_VALID)


def broken_structure(rnd: random.Random) -> Case:
    kind = rnd.randrange(6)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        if kind != 0:
            zf.writestr("[Content_Types].xml", CONTENT_TYPES)
        zf.writestr("_rels/.rels", ROOT_RELS)
        if kind != 1:
            zf.writestr("xl/workbook.xml", WORKBOOK if kind != 2 else "<workbook><sheets></sheets></workbook>")
        zf.writestr(
            "xl/_rels/workbook.xml.rels",
            WORKBOOK_RELS if kind != 3 else WORKBOOK_RELS.replace("sheet1", "../../../etc/passwd"),
        )
        if kind == 4:
            zf.writestr("xl/worksheets/sheet1.xml", "<worksheet><sheetData><row><c>")  # unclosed XML
        elif kind == 5:
            zf.writestr("xl/worksheets/sheet1.xml", valid_workbook())  # a zip inside the zip
        else:
            zf.writestr("xl/worksheets/sheet1.xml", "".join(sheet_xml(HEADERS, _valid_rows(3, 1))))
    # Without [Content_Types].xml the rest is a valid workbook, and readers may accept it.
    return Case(f"structure#{kind}", out.getvalue(), MAYBE_VALID if kind == 0 else REFUSED)


def many_entries(rnd: random.Random) -> Case:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        for i in range(rnd.choice([20_000, 60_000])):
            zf.writestr(f"x/{i}", b"")
    return Case("many-zip-entries", out.getvalue(), REFUSED)


UPLOAD_LIMIT = 32 * 1024 * 1024  # the hostile test's stack runs with this max_upload_bytes


def oversized(rnd: random.Random) -> Case:
    return Case("over-the-limit", valid_workbook() + rnd.randbytes(UPLOAD_LIMIT + 1), REFUSED)


FAMILIES: list[Callable[[random.Random], Case]] = [
    truncated, wrong_magic, flipped_bytes, zip_bomb, empty_rows, shared_string_bomb, formulas, merged_cells,
    hidden_first_sheet, wide, far_corner, non_utf8, huge_cell, odd_dates, entity_expansion, broken_structure,
    many_entries, oversized,
]  # fmt: skip


def cases(count: int, seed: int = 7) -> Iterator[Case]:
    """`count` cases, every family at least once when count allows, then families at random."""
    rnd = random.Random(seed)
    for i in range(count):
        family = FAMILIES[i] if i < len(FAMILIES) else rnd.choice(FAMILIES)
        yield family(rnd)
