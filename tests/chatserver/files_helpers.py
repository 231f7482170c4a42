"""Helpers of the files tests: images made on the spot, and what a server keeps of files."""

from __future__ import annotations

import io
import struct
import zlib

from PIL import Image
from sqlalchemy import func, select

from chatserver import keys
from storage.blobs import FilesystemBlobStore
from storage.models import Blob, BlobChunk, File


def png(width: int = 640, height: int = 480, color=(200, 40, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "PNG")
    return out.getvalue()


def jpeg_with_location(width: int = 800, height: int = 600) -> bytes:
    """A JPEG whose EXIF names a place (GPS latitude and longitude) and a camera."""
    image = Image.new("RGB", (width, height), (10, 120, 200))
    exif = Image.Exif()
    exif[0x010F] = "ACME Camera"  # Make
    exif[0x8825] = {1: "N", 2: (39.0, 54.0, 26.0), 3: "E", 4: (116.0, 23.0, 29.0)}  # GPSInfo
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims `width`×`height` pixels: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b""))


async def kept(app) -> dict[str, int]:
    """What the server keeps of files: rows, and blobs (complete and partial) in its store."""
    db = app[keys.DB]
    blobs = app[keys.FILES].blobs
    async with db.read() as conn:
        rows = (await conn.execute(select(func.count()).select_from(File))).scalar()
        db_blobs = (await conn.execute(select(func.count()).select_from(Blob))).scalar()
        chunks = (await conn.execute(select(func.count()).select_from(BlobChunk))).scalar()
    stored = db_blobs + chunks
    if isinstance(blobs, FilesystemBlobStore):
        stored = sum(1 for p in blobs.root.rglob("*") if p.is_file())
    return {"rows": rows, "blobs": stored}
