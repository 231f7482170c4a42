"""Files over HTTP (docs/protocol.md §12.10): upload, download with ETag and Range, thumbnails, avatars.

Uploads read `request.content` as it arrives, so the app's `client_max_size` (for JSON bodies)
does not apply; the upload's own limit is enforced while reading. Downloads check the access
rule on every request, conditional ones included (`Cache-Control: no-cache`: a browser asks
again each time and gets 304 while it still may read the file). Sending: `sending.send_blob`.
"""

from __future__ import annotations

from typing import Any

from aiohttp import hdrs, web

from storage.records import FileMeta

from .. import keys
from ..errors import ServiceError, not_found
from .body import current_user, json_response
from .errors import json_error
from .routes import Route
from .sending import send_blob


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
    return await send_blob(request, meta.sha256, meta.content_type, meta.name)


async def thumbnail(request: web.Request) -> web.StreamResponse:
    user = await current_user(request)
    meta = await request.app[keys.FILES].readable(user, request.match_info["file_id"])
    if meta.thumb is None:
        raise not_found("thumbnail: this file is not an image")
    return await send_blob(request, meta.thumb, "image/webp", meta.name.rsplit(".", 1)[0] + ".webp")


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
