"""Arrays on disk, memory-mapped: frozen features and activations of data larger than RAM.

When images stream from disk (:mod:`transferkit.data.stream`), the outputs of
a frozen backbone or prefix for every image can outgrow memory too. They are
written chunk by chunk into a ``.npy`` file opened with
``numpy.lib.format.open_memmap`` and read back through the same mapping. The
file lives in ``$TRANSFERKIT_CACHE/tmp`` (else the system's temporary folder)
and is unlinked as soon as it is mapped (POSIX): the disk space returns when
the array is garbage-collected, even after a crash.

Pages of a mapping count in a process's resident memory while they are
mapped, although the kernel may drop them at any time: :func:`release` hands
them back after each chunk is written or read, so resident memory stays at
about one chunk.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import tempfile
from pathlib import Path

import numpy as np

from transferkit._cache import cache_root


def temp_folder() -> Path:
    """Where disk arrays are made: ``<cache root>/tmp`` if it can be written, else the system's."""
    root = cache_root()
    if root is not None:
        folder = root / "tmp"
        with contextlib.suppress(OSError):
            folder.mkdir(parents=True, exist_ok=True)
            if os.access(folder, os.W_OK):
                return folder
    return Path(tempfile.gettempdir())


def disk_array(shape: tuple[int, ...], dtype, folder: str | os.PathLike | None = None) -> np.memmap:
    """A new zero-filled array of ``shape`` and ``dtype`` backed by an (unlinked) ``.npy`` file.

    Example:
        >>> a = disk_array((3, 2), np.float16)
        >>> a[1] = 5; release(a)
        >>> a.sum(), isinstance(a, np.memmap)
        (np.float16(10.0), True)
    """
    folder = Path(folder) if folder is not None else temp_folder()
    fd, name = tempfile.mkstemp(suffix=".npy", prefix="transferkit-", dir=folder)
    os.close(fd)
    try:
        array = np.lib.format.open_memmap(name, mode="w+", dtype=dtype, shape=tuple(shape))
    finally:
        # The mapping keeps the data; the name can go now (Windows refuses: left in tmp).
        with contextlib.suppress(OSError):
            os.unlink(name)
    return array


def is_on_disk(array) -> bool:
    """Whether ``array`` is memory-mapped (a :func:`disk_array` or a store entry opened mapped)."""
    return _mapping(array) is not None


def release(array) -> None:
    """Drop ``array``'s mapped pages from this process's resident memory (the data stays on disk).

    Dirty pages of a shared file mapping go to the page cache, not away; a later
    read maps them in again. A no-op for arrays in memory and where ``madvise``
    is missing (not POSIX).
    """
    mapping = _mapping(array)
    if mapping is not None and hasattr(mapping, "madvise"):
        with contextlib.suppress(OSError, ValueError):
            mapping.madvise(mmap.MADV_DONTNEED)


def _mapping(array) -> mmap.mmap | None:
    while array is not None:
        if isinstance(array, mmap.mmap):
            return array
        # np.memmap keeps its mmap object in _mmap; views reach it through .base.
        found = getattr(array, "_mmap", None)
        if isinstance(found, mmap.mmap):
            return found
        array = getattr(array, "base", None)
    return None


def concatenate_rows(parts: list[np.ndarray], chunk_rows: int = 4096) -> np.memmap:
    """``np.concatenate(parts)`` into a :func:`disk_array`, a chunk of rows at a time."""
    out = disk_array((sum(len(p) for p in parts), *parts[0].shape[1:]), parts[0].dtype)
    start = 0
    for part in parts:
        for i in range(0, len(part), chunk_rows):
            rows = part[i:i + chunk_rows]
            out[start:start + len(rows)] = rows
            start += len(rows)
            release(out)
            release(part)
    return out
