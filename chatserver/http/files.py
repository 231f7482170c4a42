"""Files over HTTP (docs/protocol.md §12.10): upload, download with ETag and Range, thumbnails, avatars.

Uploads read `request.content` as it arrives, so the app's `client_max_size` (for JSON bodies)
does not apply; the upload's own limit is enforced while reading. Downloads check the access
rule on every request, conditional ones included (`Cache-Control: no-cache`: a browser asks
again each time and gets 304 while it still may read the file). The filesystem engine sends with
`FileResponse` (sendfile, zero-copy); the database engine streams chunk by chunk.
"""

from __future__ import annotations

import mmap
from typing import Any
from urllib.parse import quote

from aiohttp import hdrs, web

from storage.records import FileMeta

from .. import keys
from ..errors import ServiceError, not_found
from ..media.sniff import BINARY, is_dangerous
from .body import current_user, json_response
from .errors import json_error
from .routes import Route

FILE_CSP = "default-src 'none'; sandbox"  # a file is never a page that runs anything
MAPPED_SLICE = 1024 * 1024  # bytes handed to the transport at a time when the loop has no sendfile


def file_json(meta: FileMeta) -> dict[str, Any]:
    """The upload's answer: `{id, name, size, content_type, sha256, width?, height?}`."""
    return {**meta.carried(), "sha256": meta.sha256}


async def upload(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    try:
        meta = await request.app[keys.FILES].upload(
            user, request.content.iter_any(), name=request.query.get("name"),
            declared_type=request.headers.get(hdrs.CONTENT_TYPE), length=request.content_length,
        )
    except ServiceError as exc:
        # The rest of the body is not read: close the connection after the answer rather than
        # drain an oversized or endless body.
        response = json_error(exc.http_status, exc.code, exc.message)
        response.force_close()
        return response
    return json_response(file_json(meta), 201)


async def download(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    meta = await request.app[keys.FILES].readable(user, request.match_info["file_id"])
    return await _send_blob(request, meta.sha256, meta.content_type, meta.name)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    meta = await request.app[keys.FILES].readable(user, request.match_info["file_id"])
    if meta.thumb is None:
        raise not_found("thumbnail: this file is not an image")
    return await _send_blob(request, meta.thumb, "image/webp", meta.name.rsplit(".", 1)[0] + ".webp")


# ---------------------------------------------------------------------------- sending


class BlobFileResponse(web.FileResponse):
    """`FileResponse` (Range, sendfile) whose ETag is the blob's digest, the same on every engine
    and node, instead of the file's mtime and size.

    Where the event loop has no `sendfile` (uvloop), aiohttp would read the file in a worker
    thread, a chunk per round trip, and copy every chunk through Python; here the file is mapped
    instead and handed to the transport in slices of the mapping, which the kernel copies
    straight from the page cache into the socket. A blob's file is never changed once in place
    (it is written aside and renamed; the sweep unlinks it, which leaves a mapping intact)."""

    def __init__(self, path, etag: str, **kwargs):
        super().__init__(path, **kwargs)
        self._blob_etag = etag

    @property
    def etag(self):
        return super().etag

    @etag.setter
    def etag(self, value) -> None:
        web.StreamResponse.etag.fset(self, self._blob_etag)

    async def _sendfile_fallback(self, writer, fobj, offset: int, count: int):
        if count <= 0:
            return writer
        # Only the pages asked for (a mapping starts on a granularity boundary). They are read in
        # as the kernel copies each slice, as `sendfile` would: a slice at a time, never the
        # whole file at once.
        start = offset - offset % mmap.ALLOCATIONGRANULARITY
        mapping = mmap.mmap(fobj.fileno(), offset + count - start, offset=start, access=mmap.ACCESS_READ)
        # Not closed here: the transport may still hold slices of it; it goes with the last one.
        view = memoryview(mapping)[offset - start :]
        for at in range(0, count, MAPPED_SLICE):
            await writer.write(view[at : at + MAPPED_SLICE])
        await writer.drain()
        return writer


async def _send_blob(request: web.Request, key: str, content_type: str, name: str) -> web.StreamResponse:
    headers = {
        hdrs.CACHE_CONTROL: "private, no-cache",
        "Content-Security-Policy": FILE_CSP,
        hdrs.CONTENT_DISPOSITION: _disposition(content_type, name),
        hdrs.CONTENT_TYPE: BINARY if is_dangerous(content_type) else content_type,
    }
    if any(tag.value in (key, "*") for tag in request.if_none_match or ()):
        response = web.Response(status=304, headers={hdrs.CACHE_CONTROL: headers[hdrs.CACHE_CONTROL]})
        response.etag = key
        return response
    blobs = request.app[keys.FILES].blobs
    path = blobs.local_path(key)
    if path is not None:
        if not path.exists():
            raise not_found("file: its bytes are missing")
        return BlobFileResponse(path, key, headers=headers)
    size = await blobs.size(key)
    if size is None:
        raise not_found("file: its bytes are missing")
    response = web.StreamResponse(headers=headers)
    response.etag = key
    response.headers[hdrs.ACCEPT_RANGES] = "bytes"
    start, end = 0, size
    if hdrs.RANGE in request.headers and request.headers.get(hdrs.IF_RANGE, f'"{key}"').strip() == f'"{key}"':
        span = _range(request, size)
        if span is None:
            return web.Response(status=416, headers={hdrs.CONTENT_RANGE: f"bytes */{size}"})
        start, end = span
        response.set_status(206)
        response.headers[hdrs.CONTENT_RANGE] = f"bytes {start}-{end - 1}/{size}"
    response.content_length = end - start
    await response.prepare(request)
    async for chunk in blobs.get(key, start, end):
        await response.write(chunk)
    await response.write_eof()
    return response


def _range(request: web.Request, size: int) -> tuple[int, int] | None:
    """The one byte range asked for, as (start, end exclusive), the way `FileResponse` reads it;
    None when it cannot be satisfied (416)."""
    try:
        rng = request.http_range
    except ValueError:
        return None
    start, end = rng.start, rng.stop
    if start is None:
        return 0, size
    if start < 0 and end is None:
        start = max(0, size + start)
    end = size if end is None else min(end, size)
    if start >= size:
        return None
    return start, end


def _disposition(content_type: str, name: str) -> str:
    kind = "attachment" if is_dangerous(content_type) else "inline"
    return f"{kind}; filename*=UTF-8''{quote(name, safe='')}"


# ---------------------------------------------------------------------------- routes

FILE = {
    "type": "object",
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "size": {"type": "integer"},
        "content_type": {"type": "string"}, "sha256": {"type": "string"},
        "width": {"type": "integer"}, "height": {"type": "integer"},
    },
}
TAGS = ("files",)
ROUTES = [
    Route("POST", "/api/files", upload,
          "Upload a file (the body is its bytes; its type is read from them); 413 past the size limit or quota",
          status=201, response=FILE, query=("name:string",), tags=TAGS, raw_body="application/octet-stream"),
    Route("GET", "/api/files/{file_id}", download,
          "A file's bytes (uploader; members of a room where a message carries it; readers of a post that does)",
          tags=TAGS, raw_response=True),
    Route("GET", "/api/files/{file_id}/thumb", thumbnail, "An image's thumbnail, at most 320×320 (same rule)",
          tags=TAGS, raw_response=True),
]
