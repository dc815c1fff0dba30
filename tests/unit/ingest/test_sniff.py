from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import pytest

from services.ingest.excel import ParseLimits
from services.ingest.excel.sniff import ODS_MIMETYPE, OLE2_MAGIC, sniff
from tests.unit.ingest.conftest import WriteXlsx
from tests.unit.ingest.hostile import MINIMAL_RELS, MINIMAL_WORKBOOK, far_corner, zip_bomb, zip_with

LIMITS = ParseLimits()


def test_real_xlsx_is_accepted_with_its_first_sheet_name(write_xlsx: WriteXlsx) -> None:
    result = sniff(write_xlsx([["user_id"]], title="Продажи & Co"), LIMITS)
    assert result.ok
    assert (result.format, result.sheet) == ("xlsx", "Продажи & Co")


def test_format_is_judged_by_content_not_by_name(write_xlsx: WriteXlsx, tmp_path: Path) -> None:
    renamed = tmp_path / "upload.csv"
    write_xlsx([["user_id"]]).rename(renamed)
    assert sniff(renamed, LIMITS).format == "xlsx"


@pytest.mark.parametrize(
    "content",
    [b"user_id;sub_date\n1;2024-01-01\n", b"", b"%PDF-1.7\n", b"<html></html>", b"PK"],
)
def test_non_spreadsheets_are_unsupported(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "sales.xlsx"
    path.write_bytes(content)
    result = sniff(path, LIMITS)
    assert not result.ok
    assert result.kind == "unsupported_format"
    assert result.message


def test_zip_without_workbook_part_is_unsupported(tmp_path: Path) -> None:
    docx = zip_with(tmp_path / "letter.xlsx", {"[Content_Types].xml": b"<Types/>", "word/document.xml": b"<w/>"})
    assert sniff(docx, LIMITS).kind == "unsupported_format"
    odt = zip_with(
        tmp_path / "text.ods",
        {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": b"<office/>"},
    )
    assert sniff(odt, LIMITS).kind == "unsupported_format"


def test_truncated_zip_is_unreadable(write_xlsx: WriteXlsx, tmp_path: Path) -> None:
    data = write_xlsx([["user_id", "sub_date"], [1, "2024-01-01"]]).read_bytes()
    path = tmp_path / "cut.xlsx"
    path.write_bytes(data[: len(data) // 2])
    result = sniff(path, LIMITS)
    assert result.kind == "unreadable_file"
    assert "damaged" in (result.message or "")


def test_other_workbook_formats_are_recognised(tmp_path: Path) -> None:
    xls = tmp_path / "old.bin"
    xls.write_bytes(OLE2_MAGIC + b"\x00" * 504)
    assert sniff(xls, LIMITS).format == "xls"
    xlsb = zip_with(tmp_path / "b.zip", {"xl/workbook.bin": b"\x00", "[Content_Types].xml": b"<Types/>"})
    assert sniff(xlsb, LIMITS).format == "xlsb"
    ods = zip_with(tmp_path / "o.zip", {"mimetype": ODS_MIMETYPE, "content.xml": b"<office/>"})
    assert sniff(ods, LIMITS).format == "ods"


def test_zip_bomb_is_refused_from_the_directory_without_decompressing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = zip_bomb(tmp_path / "bomb.xlsx")
    assert path.stat().st_size < 200_000

    def no_open(*_args: Any, **_kwargs: Any) -> None:
        raise AssertionError("sniff decompressed an entry of a zip bomb")

    monkeypatch.setattr(zipfile.ZipFile, "open", no_open)
    result = sniff(path, LIMITS)
    assert result.kind == "zip_bomb"
    assert "compressed suspiciously well" in (result.message or "")


def test_declared_uncompressed_size_over_the_limit(write_xlsx: WriteXlsx) -> None:
    path = write_xlsx([["user_id", "sub_date"], [1, "2024-01-01"]])
    result = sniff(path, ParseLimits(max_uncompressed_bytes=1000))
    assert result.kind == "file_too_large"


def test_too_many_entries(tmp_path: Path) -> None:
    entries = {f"xl/media/{i}.png": b"x" for i in range(12)}
    path = zip_with(tmp_path / "many.xlsx", {"xl/workbook.xml": MINIMAL_WORKBOOK, **entries})
    assert sniff(path, ParseLimits(max_zip_entries=10)).kind == "zip_bomb"
    assert sniff(path, ParseLimits(max_zip_entries=20)).ok


def test_far_corner_dimension_is_sheet_too_large(tmp_path: Path) -> None:
    result = sniff(far_corner(tmp_path / "corner.xlsx", keep_dimension=True), LIMITS)
    assert result.kind == "sheet_too_large"
    assert "1048576 rows and 16384 columns" in (result.message or "")


def test_dimension_within_limits_passes_and_limits_are_exact(write_xlsx: WriteXlsx) -> None:
    rows = [["user_id", "sub_date", "name"]] + [[i, "2024-01-01", "n"] for i in range(5)]
    path = write_xlsx(rows)  # dimension A1:C6
    assert sniff(path, ParseLimits(max_rows=5, max_columns=3)).ok
    assert sniff(path, ParseLimits(max_rows=4, max_columns=3)).kind == "sheet_too_large"
    assert sniff(path, ParseLimits(max_rows=5, max_columns=2)).kind == "sheet_too_large"


def test_first_sheet_is_resolved_through_relationships(tmp_path: Path) -> None:
    workbook = MINIMAL_WORKBOOK.replace(b'name="Data"', b'name="Second &amp; first"')
    rels = MINIMAL_RELS.replace(b"worksheets/sheet1.xml", b"/xl/worksheets/other.xml")
    path = zip_with(
        tmp_path / "r.xlsx",
        {
            "xl/workbook.xml": workbook,
            "xl/_rels/workbook.xml.rels": rels,
            "xl/worksheets/sheet1.xml": b'<worksheet><dimension ref="A1:B2"/></worksheet>',
            "xl/worksheets/other.xml": b'<worksheet><dimension ref="A1:ZZ2"/></worksheet>',
        },
    )
    result = sniff(path, LIMITS)
    assert result.kind == "sheet_too_large"
    assert result.sheet == "Second & first"
