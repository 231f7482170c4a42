"""Image size and thumbnail with Pillow; blocking, so it runs in a worker thread (see `describe`).

Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`) is enforced before anything is
decoded: a small file that claims a huge picture is refused. Thumbnails are WebP of at most
320×320, turned upright by their EXIF orientation and saved without any EXIF (so no location).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps

THUMB_SIZE = (320, 320)
ORIENTATION = 0x0112  # the EXIF tag


class ImageRefused(Exception):
    """Not an image Pillow can read, or one past its decompression-bomb limit."""


@dataclass(frozen=True, slots=True)
class ImageInfo:
    width: int
    height: int
    thumbnail: bytes  # WebP


def describe(path: Path | str) -> ImageInfo:
    """Read the image at `path`: its size and a thumbnail. Raises `ImageRefused`."""
    try:
        with Image.open(path) as image:  # reads the header only; past twice the limit Pillow refuses here
            width, height = image.size
            if width * height > (Image.MAX_IMAGE_PIXELS or 0) > 0:
                raise ImageRefused(f"{width}×{height} pixels is more than the limit of {Image.MAX_IMAGE_PIXELS}")
            if image.getexif().get(ORIENTATION) in (5, 6, 7, 8):  # shown turned a quarter
                width, height = height, width
            image.draft("RGB", THUMB_SIZE)  # JPEG: decode at a reduced scale, much faster
            thumb = ImageOps.exif_transpose(image)
            thumb.thumbnail(THUMB_SIZE)
            if thumb.mode not in ("RGB", "RGBA"):
                thumb = thumb.convert("RGBA" if "A" in thumb.getbands() or "transparency" in thumb.info else "RGB")
            out = io.BytesIO()
            thumb.save(out, "WEBP", quality=80)  # no exif= argument: nothing of the EXIF is kept
    except ImageRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageRefused(str(exc)) from None
    except (OSError, ValueError, SyntaxError) as exc:  # what Pillow raises for damaged files
        raise ImageRefused(f"not a readable image: {exc}") from None
    return ImageInfo(width, height, out.getvalue())
