"""The on-disk cache of frozen features: a folder of checked ``.npy`` files, capped, LRU.

A frozen backbone (or a backbone's frozen prefix) computes the same output for
the same image every time, so its outputs outlive the process that computed
them: the next ``train`` or ``fine_tune`` of the same frozen part on the same
images reads them back instead of running the network again. This module is
the store only, plain Python and NumPy: the key (what makes two computations
the same) is built in :mod:`transferkit.models.fingerprint`.

- **Where**: ``$TRANSFERKIT_CACHE``, else the user's cache folder
  (``$XDG_CACHE_HOME/transferkit``, ``~/.cache/transferkit``; on Windows
  ``%LOCALAPPDATA%\\transferkit``). ``TRANSFERKIT_CACHE=off`` (or ``0``)
  turns it off.
- **Safe**: each entry is written to a temporary file and renamed
  (``transferkit._atomic``), so two processes writing one key both leave a
  whole entry, and a killed write leaves only a temporary file. An entry ends
  in a trailer holding its data's size and CRC-32: a truncated or damaged
  entry is detected, removed and recomputed, never returned.
- **Capped**: ``$TRANSFERKIT_CACHE_MAX`` (default 10 GB). After each write the
  entries read or written longest ago are removed until the rest fit (a read
  touches its entry's modification time).
- **Optional**: a folder that cannot be written is reported once (a warning
  on the ``transferkit`` logger) and training runs without the cache.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import struct
import sys
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from transferkit._atomic import TMP_MARK, atomic_write
from transferkit._progress import format_size
from transferkit.errors import ConfigurationError

logger = logging.getLogger("transferkit")

ENV_LOCATION, ENV_MAX = "TRANSFERKIT_CACHE", "TRANSFERKIT_CACHE_MAX"
OFF_VALUES = frozenset({"off", "0", "false", "no", "none"})
DEFAULT_MAX_BYTES = 10 * 2**30
ENTRIES = "features-v1"
"""The entries' folder under the cache root; a new entry format gets a new folder."""
STALE_TEMP_S = 3600.0
"""A temporary file this old is a killed write's leftover, not a write in progress."""

_CHUNK_BYTES = 16 * 2**20  # mapped entries are read and written this much at a time
_TRAILER = struct.Struct("<8sQI")  # magic, data bytes, CRC-32 of the data
_MAGIC = b"TKCACHE1"
_KEY = re.compile(r"^[0-9a-f]{16,64}$")
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}
_warned: set[str] = set()  # cache roots already reported unwritable in this process


def cache_root(environ: Mapping[str, str] | None = None) -> Path | None:
    """The cache folder, or None where ``TRANSFERKIT_CACHE`` turns the cache off.

    Args:
        environ: The environment variables to read; default ``os.environ``.

    Example:
        >>> cache_root({"TRANSFERKIT_CACHE": "off"}) is None
        True
        >>> cache_root({"TRANSFERKIT_CACHE": "/data/tk-cache"}).as_posix()
        '/data/tk-cache'
        >>> cache_root({"XDG_CACHE_HOME": "/tmp/xdg"}).name
        'transferkit'
    """
    environ = os.environ if environ is None else environ
    value = environ.get(ENV_LOCATION, "").strip()
    if value.lower() in OFF_VALUES:
        return None
    if value:
        return Path(value).expanduser()
    if sys.platform == "win32" and environ.get("LOCALAPPDATA"):
        return Path(environ["LOCALAPPDATA"]) / "transferkit"
    base = environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "transferkit"


def parse_size(text: str) -> int:
    """Bytes from ``"10GB"``, ``"500 MB"``, ``"2g"`` or ``"1048576"`` (1,024-based units).

    Raises:
        ConfigurationError: For text that is not a size.

    Example:
        >>> parse_size("10GB"), parse_size("1.5 k"), parse_size("4096")
        (10737418240, 1536, 4096)
    """
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([kmgt]?)(?:i?b)?\s*", str(text).lower())
    if match is None:
        raise ConfigurationError(
            f"Cannot read {text!r} as a cache size: give bytes or a size such as '10GB' or '500MB'.")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def max_bytes_from_environment() -> int:
    """The cap: ``$TRANSFERKIT_CACHE_MAX``, else :data:`DEFAULT_MAX_BYTES`."""
    value = os.environ.get(ENV_MAX, "").strip()
    return parse_size(value) if value else DEFAULT_MAX_BYTES


@dataclass(frozen=True)
class CacheInfo:
    """What the cache holds: its folder, entries, their total size and the cap."""

    location: Path
    entries: int
    total_bytes: int
    max_bytes: int


class FeatureStore:
    """Arrays on disk by key: get, put, LRU eviction under a size cap.

    Args:
        root: The cache folder (entries go in its ``features-v1/``).
        max_bytes: The cap on the entries' total size; default ``$TRANSFERKIT_CACHE_MAX``
            or 10 GB.

    Example:
        >>> import tempfile
        >>> store = FeatureStore(tempfile.mkdtemp())
        >>> store.put("0123456789abcdef", np.arange(6.0).reshape(2, 3))
        True
        >>> store.get("0123456789abcdef")
        array([[0., 1., 2.],
               [3., 4., 5.]])
        >>> store.get("fedcba9876543210") is None
        True
    """

    def __init__(self, root: str | os.PathLike, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.folder = self.root / ENTRIES
        self.max_bytes = max_bytes_from_environment() if max_bytes is None else int(max_bytes)

    @classmethod
    def from_environment(cls) -> FeatureStore | None:
        """The store at :func:`cache_root`, or None where the cache is off."""
        root = cache_root()
        return None if root is None else cls(root)

    def path(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ConfigurationError(f"A cache key is 16-64 lowercase hex digits, got {key!r}.")
        return self.folder / f"{key}.npy"

    def get(self, key: str, *, mmap: bool = False) -> np.ndarray | None:
        """The array stored under ``key``, or None (absent, or damaged: then it is removed).

        ``mmap``: checked, then memory-mapped read-only rather than read into memory
        (outputs of images streamed from disk; see :mod:`transferkit._diskarray`).
        """
        path = self.path(key)
        try:
            array = read_entry(path, mmap=mmap)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, EOFError, struct.error) as exc:
            logger.info("A damaged feature-cache entry (%s: %s) is removed and recomputed.",
                        path.name, exc)
            _remove(path)
            return None
        # The least recently used go first: a read counts as a use. (A read-only
        # cache still serves its entries.)
        with contextlib.suppress(OSError):
            os.utime(path)
        return array

    def put(self, key: str, array: np.ndarray) -> bool:
        """Store ``array`` under ``key``, then evict down to the cap; whether it was stored.

        A folder that cannot be written is reported once per process; the call
        returns False and training goes on without the cache.
        """
        array = np.ascontiguousarray(array)
        if array.dtype.hasobject:
            raise ConfigurationError("The feature cache stores numeric arrays only.")
        if array.nbytes > self.max_bytes:
            logger.info("Not cached: %s is over the feature cache's cap of %s (%s).",
                        format_size(array.nbytes), format_size(self.max_bytes), ENV_MAX)
            return False
        try:
            atomic_write(self.path(key), lambda tmp: write_entry(tmp, array))
        except OSError as exc:
            if str(self.root) not in _warned:
                _warned.add(str(self.root))
                logger.warning("The feature cache at %s cannot be written (%s): running "
                               "without it (set %s to another folder, or to 'off').",
                               self.root, exc.strerror or exc, ENV_LOCATION)
            return False
        self.evict(keep=key)
        return True

    def entries(self) -> list[os.DirEntry]:
        """The entry files, oldest use first."""
        try:
            with os.scandir(self.folder) as it:
                found = [e for e in it if e.name.endswith(".npy") and _KEY.match(e.name[:-4])]
        except OSError:  # no folder yet, or one that cannot be read: no entries
            return []
        return sorted(found, key=_mtime)

    def info(self) -> CacheInfo:
        """Where the cache is, how many entries it holds, their total size and the cap."""
        entries = self.entries()
        return CacheInfo(self.root, len(entries), sum(map(_size, entries)), self.max_bytes)

    def evict(self, max_bytes: int | None = None, *, keep: str | None = None) -> int:
        """Remove the least recently used entries until the rest fit ``max_bytes``; bytes freed.

        Temporary files of writes killed over an hour ago go too. ``keep``: a key
        never removed (the entry just written).
        """
        cap = self.max_bytes if max_bytes is None else max_bytes
        freed = self._remove_stale_temps(older_than=STALE_TEMP_S)
        entries = self.entries()
        total = sum(map(_size, entries))
        for entry in entries:
            if total <= cap:
                break
            if entry.name[:-4] == keep:
                continue
            size = _size(entry)
            if _remove(Path(entry.path)):
                freed += size
            total -= size  # gone, whether this process or another removed it
        return freed

    def clear(self) -> tuple[int, int]:
        """Remove every entry (and leftover temporary file); ``(entries removed, bytes freed)``."""
        removed = freed = 0
        for entry in self.entries():
            size = _size(entry)
            if _remove(Path(entry.path)):
                removed, freed = removed + 1, freed + size
        return removed, freed + self._remove_stale_temps(older_than=0.0)

    def _remove_stale_temps(self, older_than: float) -> int:
        freed, now = 0, time.time()
        try:
            with os.scandir(self.folder) as it:
                temps = [e for e in it if e.name.startswith(".") and TMP_MARK in e.name]
        except OSError:
            return 0
        for entry in temps:
            size = _size(entry)
            if now - _mtime(entry) >= older_than and _remove(Path(entry.path)):
                freed += size
        return freed


def write_entry(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as ``.npy`` followed by the trailer :func:`read_entry` checks.

    A memory-mapped array is written a chunk of rows at a time, its pages handed
    back after each (:func:`transferkit._diskarray.release`): it never all
    comes into memory.
    """
    from transferkit._diskarray import is_on_disk, release

    array = np.ascontiguousarray(array)
    with open(path, "wb") as f:
        if not is_on_disk(array) or array.ndim == 0:
            np.lib.format.write_array(f, array, allow_pickle=False)
            crc = zlib.crc32(_bytes(array))
        else:
            np.lib.format.write_array_header_2_0(
                f, np.lib.format.header_data_from_array_1_0(array))
            crc, rows = 0, max(1, _CHUNK_BYTES // max(1, array[0].nbytes))
            for start in range(0, len(array), rows):
                chunk = np.ascontiguousarray(array[start:start + rows])
                f.write(_bytes(chunk))
                crc = zlib.crc32(_bytes(chunk), crc)
                release(array)
        f.write(_TRAILER.pack(_MAGIC, array.nbytes, crc))


def read_entry(path: str | os.PathLike, *, mmap: bool = False) -> np.ndarray:
    """Read an entry written by :func:`write_entry`, checking its size and CRC-32.

    ``numpy.load`` reads an entry too (it ignores the trailer), unchecked.
    ``mmap``: check the entry a chunk at a time, then return it memory-mapped
    read-only (``numpy.load(path, mmap_mode="r")``) instead of in memory.

    Raises:
        ValueError: If the entry is truncated, padded or damaged.
        FileNotFoundError: If there is none.
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, fortran, dtype = read_header(f)
        if fortran or dtype.hasobject:
            raise ValueError("not an entry this cache writes")
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        expected = f.tell() + nbytes + _TRAILER.size
        actual = os.fstat(f.fileno()).st_size
        if actual != expected:
            raise ValueError(f"{actual} bytes where its header says {expected}")
        if mmap:
            crc = 0
            for start in range(0, nbytes, _CHUNK_BYTES):
                crc = zlib.crc32(f.read(min(_CHUNK_BYTES, nbytes - start)), crc)
            magic, stored, stored_crc = _TRAILER.unpack(f.read(_TRAILER.size))
            if magic != _MAGIC or stored != nbytes or stored_crc != crc:
                raise ValueError("checksum mismatch")
            return np.load(path, mmap_mode="r")
        array = np.empty(shape, dtype)
        if f.readinto(_bytes(array)) != nbytes:  # read in place: no second copy of the data
            raise ValueError("truncated while reading")
        magic, stored, crc = _TRAILER.unpack(f.read(_TRAILER.size))
    if magic != _MAGIC or stored != nbytes or zlib.crc32(_bytes(array)) != crc:
        raise ValueError("checksum mismatch")
    return array


def _bytes(array: np.ndarray) -> memoryview:
    return memoryview(array.reshape(-1).view(np.uint8))


def _size(entry: os.DirEntry) -> int:
    try:
        return entry.stat().st_size
    except OSError:
        return 0


def _mtime(entry: os.DirEntry) -> float:
    try:
        return entry.stat().st_mtime
    except OSError:
        return 0.0


def _remove(path: Path) -> bool:
    """Delete ``path``; False where it was gone already (another process) or cannot go."""
    try:
        path.unlink()
        return True
    except OSError:
        return False
