"""Image files to pixels: the formats Pillow reads, decoding, resizing, and sizes from headers."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

# Formats Pillow registers that are not pictures, or that it only recognises and
# cannot decode without an external handler: documents (PDF; EPS/PS need
# Ghostscript), scientific data containers (GRIB, BUFR, HDF5: a Keras .h5 weights
# file among them), video (MPEG) and vector metafiles (WMF/EMF). In a class folder
# such a file is skipped as "not an image" rather than failing as an unreadable one.
_NOT_PICTURES = frozenset({"PDF", "EPS", "GRIB", "BUFR", "HDF5", "MPEG", "WMF"})


def _pillow_extensions() -> frozenset[str]:
    from PIL import Image

    Image.init()  # registers every format plugin Pillow was built with
    return frozenset(ext for ext, fmt in Image.registered_extensions().items()
                     if fmt in Image.OPEN and fmt not in _NOT_PICTURES)


IMAGE_EXTENSIONS: frozenset[str] = _pillow_extensions()
"""File suffixes read as images, the picture formats this Pillow opens (JPEG, PNG, WebP, BMP,
GIF, TIFF, and rarer ones such as TGA, PPM or JPEG 2000)."""
PHOTO_EXTENSIONS: tuple[str, ...] = tuple(
    ext for ext in (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff", ".heic",
                    ".heif", ".avif") if ext in IMAGE_EXTENSIONS)
"""The common photo formats among :data:`IMAGE_EXTENSIONS`, as messages name them (HEIC and
AVIF where this Pillow opens them)."""
RESIZE_MODES = ("crop", "pad", "squash")
"""How :func:`load_image_folder` fits an image to ``image_size``: ``"crop"`` (scale the
short side, cut the centre), ``"pad"`` (scale the long side, pad with black) or
``"squash"`` (stretch to the size, changing the aspect ratio)."""


def decode_images(
    reads: list[Callable[[], bytes]], image_size: tuple[int, int] | None, resize: str = "crop"
) -> tuple[list[np.ndarray | None], list[int]]:
    """:func:`decode_image` of each ``read()``: ``(images, indices of the unreadable)``.

    An unreadable image is None in ``images``. Large files decode on a thread pool.
    """
    from concurrent.futures import ThreadPoolExecutor

    def decode(chunk):
        out = []
        for read in chunk:
            try:
                out.append(decode_image(read(), image_size, resize))
            except Exception:  # noqa: BLE001 - any decoder failure means "unreadable"
                out.append(None)
        return out

    # Threads pay off for photos, whose decoding releases the GIL for long; for
    # small images (CIFAR's 1 KB JPEGs) the Python around it dominates and
    # threads only contend for the GIL: measured 4.7 s serial vs 6.1 s on 2
    # threads for 60,000 CIFAR JPEGs.
    workers = min(8, os.cpu_count() or 1)
    first = reads[: min(len(reads), 32)]
    if workers == 1 or sum(len(r()) for r in first) / max(1, len(first)) < 32_000:
        images = decode(reads)
    else:
        step = max(16, -(-len(reads) // (4 * workers)))
        chunks = [reads[i:i + step] for i in range(0, len(reads), step)]
        with ThreadPoolExecutor(max_workers=workers) as pool:
            images = [im for part in pool.map(decode, chunks) for im in part]
    return images, [i for i, im in enumerate(images) if im is None]




def decode_image(
    blob: bytes, image_size: tuple[int, int] | None = None, resize: str = "crop"
) -> np.ndarray:
    """Decode one encoded image to uint8 RGB ``(h, w, 3)``, upright, resized if asked.

    Args:
        blob: The file's bytes (any format Pillow reads).
        image_size: ``(height, width)`` to resize to, or None to keep the size.
        resize: ``"crop"``, ``"pad"`` or ``"squash"`` (see :data:`RESIZE_MODES`).

    Returns:
        The image array.

    Raises:
        OSError: If Pillow cannot read it.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (40, 20), "red").save(buf, "PNG")
        >>> decode_image(buf.getvalue(), (16, 16), "pad").shape
        (16, 16, 3)
    """
    import io

    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(blob)) as im:
        if image_size is not None and im.format == "JPEG":
            # Decode a 4000x3000 photo at 1/2, 1/4 or 1/8 scale when that still
            # covers the target: several times faster, same result after resizing.
            im.draft("RGB", (2 * max(image_size), 2 * max(image_size)))
        im = ImageOps.exif_transpose(im)  # phone photos store rotation in EXIF
        if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
            rgba = im.convert("RGBA")
            im = Image.new("RGB", rgba.size, (255, 255, 255))
            im.paste(rgba, mask=rgba.getchannel("A"))
        im = im.convert("RGB")
        if image_size is not None:
            size = (image_size[1], image_size[0])  # Pillow speaks (width, height)
            method = Image.Resampling.BILINEAR  # antialiased when shrinking
            if resize == "crop":
                im = ImageOps.fit(im, size, method)
            elif resize == "pad":
                im = ImageOps.pad(im, size, method, color=(0, 0, 0))
            else:
                im = im.resize(size, method)
        return np.asarray(im, dtype=np.uint8)


def stored_size(blob: bytes | str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an encoded image as it will be decoded (upright), from its header.

    ``blob``: the file's bytes, or its path (then only the header is read from disk).

    Nothing is decoded: Pillow reads the header only, so sizing a folder of large
    photos costs milliseconds per file.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buf = io.BytesIO(); Image.new("RGB", (40, 20)).save(buf, "PNG")
        >>> stored_size(buf.getvalue())
        (20, 40)
    """
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob) if isinstance(blob, bytes) else blob) as im:
        width, height = im.size
        orientation = im.getexif().get(0x0112, 1)  # EXIF 5-8: stored turned by 90 degrees
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def sample_sizes(reads: list[Callable[[], bytes]], limit: int = 200) -> list[tuple[int, int]]:
    """:func:`stored_size` of up to ``limit`` images spread over ``reads`` (unreadable: left out)."""
    step = max(1, len(reads) // limit)
    sizes = []
    for read in reads[::step][:limit]:
        try:
            sizes.append(stored_size(read()))
        except Exception:  # noqa: BLE001 - unreadable files are reported when decoded
            continue
    return sizes
