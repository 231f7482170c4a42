"""A file's content type from its first bytes, never from what the uploader claims.

Binary formats are recognised by their signatures (the `filetype` library); text is told apart
from binary by decoding, then looked at for markup a browser would run (HTML, SVG, XML). The
type the uploader sent counts only to make a file more cautious: text they call JavaScript stays
JavaScript (there is no signature for it), and such types are never served inline
(docs/protocol.md §12.10).
"""

from __future__ import annotations

import re

import filetype

HEAD = 8192  # bytes looked at
BINARY = "application/octet-stream"
# Types a browser could run or render as a page: served as attachments, never inline.
DANGEROUS = frozenset({
    "text/html", "application/xhtml+xml", "image/svg+xml", "application/xml", "text/xml",
    "text/javascript", "application/javascript", "application/x-javascript", "application/ecmascript",
    "text/ecmascript", "application/json+javascript",
})
# Images Pillow reads for the size and a thumbnail.
IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff"})

_MARKUP = [
    (re.compile(rb"<svg[\s>]", re.I), "image/svg+xml"),
    (re.compile(rb"<!doctype\s+html|<html[\s>]|<head[\s>]|<body[\s>]|<script[\s>]|<iframe[\s>]", re.I), "text/html"),
    (re.compile(rb"^\s*<\?xml", re.I), "application/xml"),
]


def sniff(head: bytes, declared: str | None = None) -> str:
    """The content type of a file that starts with `head`."""
    kind = filetype.guess(head[:HEAD]) if head else None
    if kind is not None:
        return kind.mime
    if not _is_text(head[:HEAD]):
        return BINARY
    for pattern, mime in _MARKUP:
        if pattern.search(head[:HEAD]):
            return mime
    claimed = (declared or "").split(";")[0].strip().lower()
    if claimed in DANGEROUS:
        return claimed
    return "text/plain"


def is_dangerous(content_type: str) -> bool:
    return content_type in DANGEROUS or content_type.endswith("+xml")


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3  # only a character cut at the end of the head
    return True
