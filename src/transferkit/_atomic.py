"""Crash-safe writes: write to a temporary file beside the target, then rename.

``os.replace`` is atomic on POSIX and Windows, so a reader (or a process
killed mid-save) sees either the old file or the complete new one, never a
truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

TMP_MARK = ".tmp"  # every temporary name carries it, so leftovers can be found


def atomic_write(path: str | os.PathLike, write: Callable[[str], object], *, suffix: str = "") -> Path:
    """Call ``write(tmp_path)`` and rename the result onto ``path`` atomically.

    Args:
        path: Final destination.
        write: Writes the content to the temporary path it is given.
        suffix: Suffix the temporary file must carry (Keras insists on ``.keras``).

    Returns:
        ``path`` as a ``Path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_file(path, suffix)
    try:
        write(tmp)
        commit(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_dir(path: str | os.PathLike, write: Callable[[str], object], *,
                     replaceable: Callable[[Path], bool] = lambda _: False) -> Path:
    """Call ``write(tmp_folder)`` and rename the folder it filled onto ``path``.

    A folder cannot be renamed onto a non-empty one, so an existing ``path``
    is first renamed aside and deleted once the new folder is in place: a
    reader sees the old folder, briefly none, or the whole new one, never a
    half-written one. A failed ``write`` leaves ``path`` as it was.

    Args:
        path: Final folder.
        write: Fills the (new, empty) temporary folder it is given.
        replaceable: Says whether an existing ``path`` may be replaced (e.g. it
            holds an earlier export); otherwise an existing ``path`` is refused.

    Returns:
        ``path`` as a ``Path``.

    Raises:
        FileExistsError: If ``path`` exists and ``replaceable`` says no.
    """
    import shutil

    path = Path(path)
    if path.exists() and not (path.is_dir() and replaceable(path)):
        raise FileExistsError(f"{path} exists; it is not replaced.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=TMP_MARK, dir=path.parent))
    old = None
    try:
        write(str(tmp))
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; mkdir would honour the umask
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", suffix=TMP_MARK,
                                        dir=path.parent))
            os.replace(path, old)  # onto the empty folder just made
        os.replace(tmp, path)
    except BaseException:
        if old is not None and not path.exists():
            os.replace(old, path)  # put the previous folder back
            old = None
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return path


def temp_path_for(path: str | os.PathLike) -> Path:
    """An unused hidden temporary name beside ``path`` keeping the suffix Keras checks."""
    path = Path(path)
    tmp = _temp_file(path, ".weights.h5" if path.name.endswith(".weights.h5") else path.suffix)
    tmp.unlink()  # only the name is wanted: writers check that the file is new
    return tmp


def _temp_file(path: Path, suffix: str) -> Path:
    """Create an empty hidden temporary file beside ``path``, marked with :data:`TMP_MARK`."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f"{TMP_MARK}{suffix}", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Flush ``tmp`` to disk, give it the user's umask permissions and rename it onto ``path``."""
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    # mkstemp creates files mode 0600; a plain open() would have honoured the umask.
    os.chmod(tmp, 0o666 & ~_umask())
    os.replace(tmp, path)


def _umask() -> int:
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that a killed process left in ``folder`` (recursively).

    Returns:
        The files removed.
    """
    stale = [p for p in Path(folder).rglob(f".*{TMP_MARK}*") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text to ``path`` atomically."""
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: object) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_link(source: str | os.PathLike, path: str | os.PathLike) -> Path:
    """Make ``path`` the same file as ``source`` (a hard link: its bytes stored once), atomically.

    Where hard links are not possible (another file system), ``path`` is a copy.
    Both files are only ever replaced by renaming, never rewritten in place, so
    writing one later never changes the other.
    """
    import shutil

    path = Path(path)
    tmp = temp_path_for(path)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, path)
    return path


def atomic_save_model(model, path: str | os.PathLike) -> Path:
    """Save a Keras model to a ``.keras`` file atomically."""
    return atomic_write(path, lambda tmp: model.save(tmp), suffix=".keras")


def _json_default(obj):
    import numpy as np

    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serialisable")
