"""Sending a blob as an HTTP response (docs/protocol.md §12.10): ETag (304), Range (206, 416),
Content-Length, and headers that keep a file from ever running as a page.

Both engines share one path; only the body differs. The filesystem engine's file is opened on
the loop's thread (a local file, as the blob store's directory is) and sent zero-copy with
`loop.sendfile`. Where the loop has none (uvloop), one `os.sendfile` writes straight to the
socket what its buffer takes (a small file whole), and the rest of the asked-for range is
mapped and handed to the transport a slice of the mapping at a time, which the kernel copies
from the page cache into the socket, never through Python. aiohttp's `FileResponse` would
instead open and close the file in a worker thread, and on uvloop also read it there, 256 KiB
per round trip: hops that cost more than a small file's bytes. The database engine streams its
chunks.

A blob's file never changes once in place (it is written aside and renamed; the sweep unlinks
it, which leaves an open file or a mapping intact).
"""

from __future__ import annotations

import asyncio
import mmap
import os
from typing import BinaryIO
from urllib.parse import quote

from aiohttp import hdrs, web

from .. import keys
from ..errors import not_found
from ..media.sniff import BINARY, is_dangerous

FILE_CSP = "default-src 'none'; sandbox"  # a file is never a page that runs anything
MAPPED_SLICE = 1024 * 1024  # bytes handed to the transport at a time when the loop has no sendfile


async def send_blob(request: web.Request, key: str, content_type: str, name: str) -> web.StreamResponse:
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
    file: BinaryIO | None = None
    if path is not None:
        try:
            file = open(path, "rb")
        except FileNotFoundError:
            raise not_found("file: its bytes are missing") from None
        size = os.fstat(file.fileno()).st_size
    else:
        size = await blobs.size(key)
        if size is None:
            raise not_found("file: its bytes are missing")
    try:
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
        if file is not None:
            await _send_file(request, response, file, start, end - start)
        else:
            async for chunk in blobs.get(key, start, end):
                await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        if file is not None:
            file.close()


async def _send_file(request: web.Request, response: web.StreamResponse, file: BinaryIO, offset: int,
                     count: int) -> None:
    """`count` bytes of the file from `offset`, after the headers `prepare` sent."""
    if count <= 0:
        return
    transport = request.transport
    if transport is None:
        raise ConnectionResetError("the connection is gone")
    try:
        await asyncio.get_running_loop().sendfile(transport, file, offset, count)
        return
    except NotImplementedError:  # uvloop
        pass
    sent = _sendfile_at_once(transport, file, offset, count)
    offset, count = offset + sent, count - sent
    if count == 0:
        return
    # Only the pages asked for (a mapping starts on a granularity boundary); they are read in as
    # the kernel copies each slice, as `sendfile` would, never the whole file at once. The mapping
    # is not closed here: the transport may still hold slices of it; it goes with the last one.
    start = offset - offset % mmap.ALLOCATIONGRANULARITY
    mapping = mmap.mmap(file.fileno(), offset + count - start, offset=start, access=mmap.ACCESS_READ)
    view = memoryview(mapping)[offset - start :]
    for at in range(0, count, MAPPED_SLICE):
        await response.write(view[at : at + MAPPED_SLICE])


def _sendfile_at_once(transport: asyncio.Transport, file: BinaryIO, offset: int, count: int) -> int:
    """Bytes sent zero-copy straight to the socket (uvloop has no `loop.sendfile`): what its
    buffer takes in one call, all of a small file; none unless the transport holds nothing
    unsent, so nothing can overtake them. The caller hands the rest to the transport."""
    sock = transport.get_extra_info("socket")
    if (sock is None or transport.is_closing() or transport.get_extra_info("ssl_object") is not None
            or transport.get_write_buffer_size()):
        return 0
    try:
        return os.sendfile(sock.fileno(), file.fileno(), offset, count)
    except (BlockingIOError, InterruptedError):
        return 0


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
