"""Builders of hostile and odd files for the sniff and runner tests."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

from openpyxl import Workbook

MINIMAL_WORKBOOK = (
    b'<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    b'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    b'<sheets><sheet name="Data" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
MINIMAL_RELS = (
    b'<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="worksheet" Target="worksheets/sheet1.xml"/></Relationships>'
)


def far_corner(path: Path, *, keep_dimension: bool) -> Path:
    """The 1.6 KB file with cells A1 and XFD1048576 that makes calamine allocate 512 GiB.

    openpyxl writes `<dimension ref="A1:XFD1048576">`; without it only the worker's memory
    limit stands between calamine and the machine.
    """
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws["A1"] = "user_id"
    ws["XFD1048576"] = "x"
    wb.save(path)
    if not keep_dimension:
        rewrite_entry(path, "xl/worksheets/sheet1.xml", lambda xml: re.sub(rb"<dimension[^>]*/>", b"", xml))
    return path


def rewrite_entry(path: Path, name: str, change: object) -> None:
    with zipfile.ZipFile(path) as src:
        entries = [(info, src.read(info)) for info in src.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as dst:
        for info, data in entries:
            if info.filename == name:
                assert callable(change)
                data = change(data)
            dst.writestr(info.filename, data)


def zip_with(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return path


def zip_bomb(path: Path, megabytes: int = 24) -> Path:
    """A workbook-shaped zip whose sheet inflates ~1000:1 (24 MB of XML from ~25 KB)."""
    sheet = b"<worksheet><sheetData>" + b"<row/>" * (megabytes * 1024 * 1024 // 6) + b"</sheetData></worksheet>"
    return zip_with(
        path,
        {
            "xl/workbook.xml": MINIMAL_WORKBOOK,
            "xl/_rels/workbook.xml.rels": MINIMAL_RELS,
            "xl/worksheets/sheet1.xml": sheet,
        },
    )


def _ods_cell(value_type: str, attrs: str, text: str) -> str:
    return f'<table:table-cell office:value-type="{value_type}"{attrs}><text:p>{text}</text:p></table:table-cell>'


# No whitespace between elements: calamine's ODS reader rejects it (LibreOffice never writes any).
ODS_CONTENT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
    'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
    'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
    '<office:body><office:spreadsheet><table:table table:name="Sales">'
    "<table:table-row>"
    + _ods_cell("string", "", "Пользователь")
    + _ods_cell("string", "", "Дата подписки")
    + "</table:table-row><table:table-row>"
    + _ods_cell("float", ' office:value="42"', "42")
    + _ods_cell("date", ' office:date-value="2024-01-31T14:05:00"', "31.01.2024 14:05")
    + "</table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"
).encode()


def minimal_ods(path: Path) -> Path:
    """A hand-written OpenDocument spreadsheet (mimetype stored first, as the format asks)."""
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), b"application/vnd.oasis.opendocument.spreadsheet")
        zf.writestr("content.xml", ODS_CONTENT, zipfile.ZIP_DEFLATED)
        zf.writestr(
            "META-INF/manifest.xml",
            b'<?xml version="1.0"?><manifest:manifest '
            b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">'
            b'<manifest:file-entry manifest:full-path="/" '
            b'manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/></manifest:manifest>',
            zipfile.ZIP_DEFLATED,
        )
    return path
