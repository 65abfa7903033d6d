"""Image folders larger than memory: a split's files, decoded and resized when read.

``load_image_folder(..., in_memory=False)`` (chosen automatically when the
decoded images would take more than :data:`MEMORY_SHARE` of the available
memory) lists the files, reads each one's header, and splits them exactly as
the in-memory path splits decoded images: same seeds, same class order, same
files in each split. Each split is an :class:`ImageFiles`, an array-like of
uint8 images (``len``, ``shape``, ``dtype``, indexing with ints, slices and
index arrays) that decodes only what is indexed, with the in-memory path's own
:func:`~transferkit.data.images.decode_image`, on a bounded thread pool: the
pixels are identical. :class:`~transferkit.data.batches.StreamBatches` feeds
one to ``model.fit`` or ``model.predict`` as a ``keras.utils.PyDataset``.

Each file's size and modification time are recorded when it is listed; a file
that changed or disappeared since raises :class:`~transferkit.errors.DataChangedError`
when it is read, never pixels of another image.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import statistics
import threading
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from transferkit._progress import format_size
from transferkit.data.images import decode_image, sample_sizes, stored_size
from transferkit.errors import CorruptDataError, DataChangedError, DataError

logger = logging.getLogger("transferkit")

DECODE_WORKERS = max(1, min(8, os.cpu_count() or 1))
"""Threads decoding images (the pool is shared by every :class:`ImageFiles`)."""
MEMORY_SHARE = 0.5
"""``in_memory=None`` streams when the decoded images would exceed this share of available memory."""

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _decode_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(DECODE_WORKERS, thread_name_prefix="transferkit-decode")
        return _pool


def available_memory() -> int:
    """Bytes of memory available to new allocations (``MemAvailable``; else physical memory)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
        return 8 * 2**30


def should_stream(decoded_bytes: int) -> bool:
    """Whether images of ``decoded_bytes`` exceed :data:`MEMORY_SHARE` of :func:`available_memory`."""
    return decoded_bytes > MEMORY_SHARE * available_memory()


class ImageFiles:
    """One split's image files as an array-like of uint8 images, decoded when indexed.

    Args:
        paths: The files, in split order.
        sizes: Each file's size in bytes when listed.
        mtimes: Each file's modification time (ns) when listed.
        image_shape: ``(height, width, 3)`` every image decodes to.
        image_size: ``(height, width)`` to resize to (None: the files have that size).
        resize: ``"crop"``, ``"pad"`` or ``"squash"``.

    Indexing with an int gives one image ``(h, w, 3)``; with a slice, an index
    array or a boolean mask, a decoded ``uint8`` array ``(n, h, w, 3)``.
    :meth:`take` gives a lazy subset instead (what splitting uses).

    Example:
        >>> files = load_image_folder("photos/", in_memory=False).x_train  # doctest: +SKIP
        >>> files.shape, files[:8].shape  # doctest: +SKIP
        ((4800, 224, 224, 3), (8, 224, 224, 3))
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, paths: Sequence[str], sizes: Sequence[int], mtimes: Sequence[int], *,
                 image_shape: tuple[int, int, int], image_size: tuple[int, int] | None,
                 resize: str = "crop") -> None:
        self.paths = np.asarray(paths, dtype=object).reshape(-1)
        self.sizes = np.asarray(sizes, np.int64).reshape(-1)
        self.mtimes = np.asarray(mtimes, np.int64).reshape(-1)
        self.image_shape = tuple(int(s) for s in image_shape)
        self.image_size, self.resize = image_size, resize
        self.failure: Exception | None = None
        """The last file that changed or could not be decoded (see :func:`watched`)."""

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.paths), *self.image_shape)

    @property
    def nbytes(self) -> int:
        """Bytes the decoded images would take."""
        return len(self.paths) * math.prod(self.image_shape)

    def __len__(self) -> int:
        return len(self.paths)

    def __repr__(self) -> str:
        return f"ImageFiles({len(self)} files, image_shape={self.image_shape})"

    def take(self, indices, axis: int = 0) -> ImageFiles:
        """The files at ``indices`` (ints or a boolean mask), still undecoded (as ``ndarray.take``)."""
        if axis != 0:
            raise ValueError("ImageFiles.take works along the first axis only.")
        idx = np.asarray(indices)
        idx = np.flatnonzero(idx) if idx.dtype == bool else idx.astype(np.int64).reshape(-1)
        return ImageFiles(self.paths[idx], self.sizes[idx], self.mtimes[idx],
                          image_shape=self.image_shape, image_size=self.image_size,
                          resize=self.resize)

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._decode(int(index) % len(self) if index < 0 else int(index))
        if isinstance(index, tuple):  # e.g. x[:, :, ::-1]: decode the images, then index
            return self[index[0]][(slice(None), *index[1:])]
        idx = np.arange(len(self))[index]
        out = np.empty((len(idx), *self.image_shape), np.uint8)
        if len(idx) <= 1 or DECODE_WORKERS == 1:
            for j, i in enumerate(idx):
                out[j] = self._decode(int(i))
            return out

        def decode_into(j: int) -> None:  # into place: no list of images beside the batch
            out[j] = self._decode(int(idx[j]))

        list(_decode_pool().map(decode_into, range(len(idx))))
        return out

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        """Every image decoded (what ``np.asarray(files)`` gives: it takes the memory)."""
        array = self[:]
        return array if dtype is None else array.astype(dtype)

    def concatenate(self, others: Sequence[ImageFiles]) -> ImageFiles:
        """These files followed by ``others``' (which share their image shape and resizing)."""
        parts = [self, *others]
        return ImageFiles(np.concatenate([p.paths for p in parts]),
                          np.concatenate([p.sizes for p in parts]),
                          np.concatenate([p.mtimes for p in parts]),
                          image_shape=self.image_shape, image_size=self.image_size,
                          resize=self.resize)

    def digest(self) -> str:
        """A digest of what the images are: paths, sizes, modification times, size and resizing.

        The feature cache keys streamed images by it (hashing the pixels would decode them all).
        """
        h = hashlib.blake2b(digest_size=16)
        h.update(repr((self.image_shape, self.image_size, self.resize)).encode())
        h.update("\0".join(map(str, self.paths)).encode())
        h.update(self.sizes.tobytes())
        h.update(self.mtimes.tobytes())
        return h.hexdigest()

    def verify(self) -> None:
        """Check that every file is as it was listed (size and modification time).

        Raises:
            DataChangedError: Naming the first files that changed or disappeared.
        """
        changed = [p for p, size, mtime in zip(self.paths, self.sizes, self.mtimes)
                   if _changed(p, size, mtime)]
        if changed:
            raise _changed_error(changed)

    def _decode(self, i: int) -> np.ndarray:
        try:
            return self._read(i)
        except (DataChangedError, CorruptDataError, DataError) as exc:
            self.failure = exc  # a backend's data pipeline may wrap it: watched() unwraps it
            raise

    def _read(self, i: int) -> np.ndarray:
        path = self.paths[i]
        try:
            with open(path, "rb") as f:
                stat = os.fstat(f.fileno())
                if (stat.st_size, stat.st_mtime_ns) != (self.sizes[i], self.mtimes[i]):
                    raise _changed_error([path])
                blob = f.read()
        except FileNotFoundError:
            raise _changed_error([path]) from None
        try:
            image = decode_image(blob, self.image_size, self.resize)
        except Exception as exc:  # noqa: BLE001 - any decoder failure means "unreadable"
            raise CorruptDataError(f"{path}: unreadable image ({exc}).") from exc
        if image.shape != self.image_shape:
            raise DataError(f"{path} decodes to {image.shape}, not {self.image_shape} as the "
                            "other images: pass image_size= to resize them to one size.")
        return image


def _changed(path: str, size: int, mtime: int) -> bool:
    try:
        stat = os.stat(path)
    except OSError:
        return True
    return (stat.st_size, stat.st_mtime_ns) != (size, mtime)


def _changed_error(paths: Sequence[str]) -> DataChangedError:
    shown = ", ".join(map(str, paths[:5])) + (" ..." if len(paths) > 5 else "")
    return DataChangedError(
        f"{len(paths)} image file(s) changed or disappeared since the folder was listed: {shown}. "
        "Streamed images are read while training runs: leave the folder as it is until the run "
        "ends (copy it first to change it), then run again.")


def streams(reads: list, image_size: tuple[int, int] | None) -> bool:
    """Whether images read by ``reads`` decoded to ``image_size`` would not fit in memory.

    Without an ``image_size``, the images keep their sizes: a sample of headers
    (:func:`~transferkit.data.images.sample_sizes`) gives the median one.
    """
    if image_size is None:
        sizes = sample_sizes(reads)
        if not sizes:
            return False
        image_size = (statistics.median(h for h, _ in sizes), statistics.median(w for _, w in sizes))
    decoded = int(len(reads) * image_size[0] * image_size[1] * 3)
    limit = MEMORY_SHARE * available_memory()
    if decoded <= limit:
        return False
    logger.info("Streaming the images from disk: decoded they would take %s, more than %.0f%% "
                "of the memory available (%s).", format_size(decoded), 100 * MEMORY_SHARE,
                format_size(int(limit / MEMORY_SHARE)))
    return True


def file_tree(groups: dict[tuple[str, str], list], root, *, image_size: tuple[int, int] | None,
              resize: str, strict: bool) -> dict[str, dict[str, ImageFiles]]:
    """``{split: {class: ImageFiles}}`` of classified files, as ``read_image_tree`` decodes them.

    Every header is read (not the pixels): a file whose header is unreadable is
    skipped with a warning (raises with ``strict``), as an unreadable image is when
    decoding, so the splits hold the same files as in memory.
    """
    flat = [(key, os.path.join(root, *name.split("/"))) for key, files in groups.items()
            for name, _ in files]
    headers = list(_decode_pool().map(_header, [path for _, path in flat]))
    bad = [path for (_, path), size in zip(flat, headers) if size is None]
    if bad:
        shown = ", ".join(os.path.relpath(p, root) for p in bad[:5]) + (" ..." if len(bad) > 5 else "")
        if strict:
            raise CorruptDataError(f"{root}: {len(bad)} unreadable image(s): {shown}")
        warnings.warn(f"{root}: skipped {len(bad)} unreadable image(s): {shown}", stacklevel=3)
    good = [(key, path) for (key, path), size in zip(flat, headers) if size is not None]
    if not good:
        raise DataError(f"{root}: no readable images.")
    shapes = {(*size, 3) for size in headers if size is not None}
    if image_size is None and len(shapes) > 1:
        raise DataError(f"{root}: images differ in size ({sorted(shapes)[:4]} ...). "
                        "Pass image_size= to resize them to one size.")
    shape = (*image_size, 3) if image_size is not None else shapes.pop()
    by_key: dict[tuple[str, str], list[str]] = {}
    for key, path in good:
        by_key.setdefault(key, []).append(path)
    tree: dict[str, dict[str, ImageFiles]] = {}
    for (split, cls), paths in by_key.items():
        tree.setdefault(split, {})[cls] = ImageFiles(*list_files(paths), image_shape=shape,
                                                     image_size=image_size, resize=resize)
    return tree


def _header(path: str) -> tuple[int, int] | None:
    try:
        return stored_size(path)
    except Exception:  # noqa: BLE001 - any reader failure means "unreadable"
        return None


@contextlib.contextmanager
def watched(data, *, verify: bool = True):
    """Around training on ``data``: check streamed files first, and raise their own errors.

    A file that changed since listing raises :class:`DataChangedError` before
    anything runs (``verify``). One that changes while training runs fails inside
    Keras' data pipeline, which on TensorFlow wraps the error in its own: the
    file's error is raised instead, with the backend's as its cause.
    """
    files = streamed_splits(data)
    if verify:
        for x in files:
            x.verify()
    try:
        yield
    except (DataChangedError, CorruptDataError):
        raise
    except Exception as exc:
        failure = next((x.failure for x in files if x.failure is not None), None)
        if failure is None:
            raise
        raise failure from exc


def list_files(paths: Sequence[str | os.PathLike]) -> tuple[list[str], list[int], list[int]]:
    """``(paths, sizes, modification times in ns)``, as :class:`ImageFiles` records them."""
    stats = [os.stat(p) for p in paths]
    return [str(p) for p in paths], [s.st_size for s in stats], [s.st_mtime_ns for s in stats]


def concatenate(parts: Sequence[np.ndarray | ImageFiles]) -> np.ndarray | ImageFiles:
    """``np.concatenate`` of image arrays, or :meth:`ImageFiles.concatenate` of streamed ones."""
    if isinstance(parts[0], ImageFiles):
        return parts[0].concatenate(parts[1:])
    return np.concatenate(parts)


def streamed_splits(data) -> list[ImageFiles]:
    """The splits of ``data`` (a DataSplits) that stream from disk."""
    return [x for x in (data.x_train, data.x_val, data.x_test) if isinstance(x, ImageFiles)]
