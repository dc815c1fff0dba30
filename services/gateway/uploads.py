"""Streams a multipart upload straight into GridFS, chunk by chunk.

The gateway never holds an upload whole: the request body is parsed as it arrives, the `file`
part is written to GridFS in the chunks it came in, and the size limit and the content check
(is this a spreadsheet at all?) are applied on the fly, before the rest of the body is read.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import Request
from gridfs import AsyncGridFSBucket
from python_multipart.multipart import MultipartParser, parse_options_header

# Spreadsheet containers by their first bytes: zip (xlsx, xlsm, xlsb, ods) and OLE2 (xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SNIFF_BYTES = 8


class UploadRejected(Exception):
    def __init__(self, status_code: int, detail: str) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail


@dataclass
class StoredUpload:
    file_id: str
    filename: str
    size: int


def looks_like_spreadsheet(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC) or head.startswith(OLE2_MAGIC)


@dataclass
class _PartState:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    is_file: bool = False
    filename: str = "upload.xlsx"
    seen_file: bool = False
    done_file: bool = False
    pending: list[bytes] = field(default_factory=list)


async def stream_upload_to_gridfs(
    request: Request, bucket: AsyncGridFSBucket, max_bytes: int, metadata: dict[str, object]
) -> StoredUpload:
    content_type, params = parse_options_header(request.headers.get("content-type"))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise UploadRejected(422, "the body must be multipart/form-data with a `file` part")
    declared = request.headers.get("content-length")
    # The multipart envelope adds a few hundred bytes; anything declared far beyond the limit
    # is refused before a single byte of it is read.
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise UploadRejected(413, f"the file is larger than the limit of {max_bytes} bytes")

    state = _PartState()

    def on_part_begin() -> None:
        state.headers = {}
        state.is_file = False

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[bytes(state.header_field).lower()] = bytes(state.header_value)
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        _, disposition = parse_options_header(state.headers.get(b"content-disposition", b""))
        if disposition.get(b"name") == b"file" and not state.seen_file:
            state.is_file = True
            state.seen_file = True
            raw_name = disposition.get(b"filename", b"upload.xlsx")
            state.filename = raw_name.decode("utf-8", "replace")[:255] or "upload.xlsx"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.is_file:
            state.pending.append(bytes(data[start:end]))

    def on_part_end() -> None:
        if state.is_file:
            state.done_file = True
        state.is_file = False

    parser = MultipartParser(
        boundary,
        callbacks={
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    grid_in = None
    size = 0
    head = b""
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if not state.pending:
                continue
            if grid_in is None:
                grid_in = bucket.open_upload_stream(state.filename, metadata=metadata)
            for piece in state.pending:
                size += len(piece)
                if size > max_bytes:
                    raise UploadRejected(413, f"the file is larger than the limit of {max_bytes} bytes")
                if len(head) < SNIFF_BYTES:
                    head += piece[: SNIFF_BYTES - len(head)]
                    if len(head) >= SNIFF_BYTES and not looks_like_spreadsheet(head):
                        raise UploadRejected(415, "the file is not a spreadsheet (expected .xlsx, .xls, .xlsb or .ods)")
                await grid_in.write(piece)
            state.pending.clear()
        parser.finalize()
        if not state.seen_file:
            raise UploadRejected(422, "the multipart body has no `file` part")
        if not looks_like_spreadsheet(head):
            raise UploadRejected(415, "the file is not a spreadsheet (expected .xlsx, .xls, .xlsb or .ods)")
        assert grid_in is not None
        await grid_in.close()
        return StoredUpload(str(grid_in._id), state.filename, size)
    except BaseException:
        if grid_in is not None:
            await grid_in.abort()
        raise
