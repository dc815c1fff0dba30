"""Streams a multipart upload straight into GridFS, chunk by chunk.

The gateway never holds an upload whole: the request body is parsed as it arrives, the `file`
part is written to GridFS in bounded batches of chunks, and the size limit and the content check
(is this a spreadsheet at all?) are applied on the fly, before the rest of the body is read.

The driver's own `GridIn` buffers up to 48 MB of chunks (its `_UPLOAD_BUFFER_SIZE`) before one
insert, so the gateway's peak memory grew with the uploads in flight (measured in
docs/benchmarks.md, "Pipeline"); `GridFSWriter` writes the same GridFS layout (any GridFS reader
opens it) with at most `FLUSH_CHUNKS` chunks in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bson import Binary, Int64, ObjectId
from fastapi import Request
from pymongo.asynchronous.database import AsyncDatabase
from python_multipart.multipart import MultipartParser, parse_options_header

# Spreadsheet containers by their first bytes: zip (xlsx, xlsm, xlsb, ods) and OLE2 (xls).
ZIP_MAGIC = b"PK\x03\x04"
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
SNIFF_BYTES = 8
# GridFS's default chunk size, and how many chunks one insert carries (1 MB of file).
CHUNK_BYTES = 255 * 1024
FLUSH_CHUNKS = 4


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


class GridFSWriter:
    """Writes one file in the GridFS layout of `bucket` (`<bucket>.chunks`, then `<bucket>.files`
    last, so a reader never sees a file whose chunks are missing), holding at most
    `FLUSH_CHUNKS` chunks at a time."""

    def __init__(self, db: AsyncDatabase[Any], bucket: str, filename: str, metadata: dict[str, object]) -> None:
        self.file_id = ObjectId()
        self._files = db[f"{bucket}.files"]
        self._chunks = db[f"{bucket}.chunks"]
        self._filename = filename
        self._metadata = metadata
        self._buffer = bytearray()
        self._batch: list[dict[str, object]] = []
        self._n = 0
        self.length = 0

    async def write(self, data: bytes) -> None:
        self._buffer += data
        self.length += len(data)
        while len(self._buffer) >= CHUNK_BYTES:
            self._cut(CHUNK_BYTES)
            if len(self._batch) >= FLUSH_CHUNKS:
                await self._flush()

    async def close(self) -> None:
        if self._buffer:
            self._cut(len(self._buffer))
        await self._flush()
        await self._files.insert_one(
            {
                "_id": self.file_id,
                "length": Int64(self.length),
                "chunkSize": CHUNK_BYTES,
                "uploadDate": datetime.now(UTC),
                "filename": self._filename,
                "metadata": self._metadata,
            }
        )

    async def abort(self) -> None:
        self._batch.clear()
        await self._chunks.delete_many({"files_id": self.file_id})

    def _cut(self, size: int) -> None:
        self._batch.append({"files_id": self.file_id, "n": self._n, "data": Binary(bytes(self._buffer[:size]))})
        del self._buffer[:size]
        self._n += 1

    async def _flush(self) -> None:
        if self._batch:
            await self._chunks.insert_many(self._batch, ordered=True)
            self._batch = []


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
    request: Request, db: AsyncDatabase[Any], bucket: str, max_bytes: int, metadata: dict[str, object]
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
    grid_in: GridFSWriter | None = None
    size = 0
    head = b""
    try:
        async for chunk in request.stream():
            parser.write(chunk)
            if not state.pending:
                continue
            if grid_in is None:
                grid_in = GridFSWriter(db, bucket, state.filename, metadata)
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
        return StoredUpload(str(grid_in.file_id), state.filename, size)
    except BaseException:
        if grid_in is not None:
            await grid_in.abort()
        raise
