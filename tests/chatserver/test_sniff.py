"""A file's type comes from its bytes (docs/protocol.md §12.10); what the uploader claims only makes
it more careful. Pure functions: no server."""

from __future__ import annotations

import pytest

from chatserver.media.sniff import HEAD, is_dangerous, sniff
from tests.chatserver.files_helpers import jpeg_with_location, png


@pytest.mark.parametrize("head, declared, expected", [
    (png(4, 4), "text/html", "image/png"),
    (jpeg_with_location(8, 8), None, "image/jpeg"),
    (b"%PDF-1.7\n...", "image/png", "application/pdf"),
    (b"PK\x03\x04" + b"\x00" * 40, None, "application/zip"),
    (b"hello, world\n", "image/png", "text/plain"),
    ("你好，世界".encode() * 2000, None, "text/plain"),  # a character cut at the end of the head is still text
    (b"\x00\x01\x02\x03binary", "text/plain", "application/octet-stream"),
    (b"  <!doctype HTML><p>hi", "text/plain", "text/html"),
    (b"<div><script>alert(1)</script></div>", None, "text/html"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', None, "image/svg+xml"),
    (b'<?xml version="1.0"?><feed/>', None, "application/xml"),
    (b"alert(1)", "application/javascript; charset=utf-8", "application/javascript"),
    (b"alert(1)", "text/plain", "text/plain"),
    (b"", "text/html", "text/html"),
])
def test_sniff(head, declared, expected):
    assert sniff(head, declared) == expected


def test_only_the_head_is_read():
    assert sniff(b"a" * HEAD + b"<html>", None) == "text/plain"


@pytest.mark.parametrize("content_type, dangerous", [
    ("text/html", True), ("image/svg+xml", True), ("application/xml", True), ("application/atom+xml", True),
    ("text/javascript", True), ("image/png", False), ("text/plain", False), ("application/pdf", False),
])
def test_what_is_dangerous(content_type, dangerous):
    assert is_dangerous(content_type) is dangerous
