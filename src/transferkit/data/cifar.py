"""CIFAR-10: found locally (pickles, a JPEG tree, an archive) or downloaded by Keras."""

from __future__ import annotations

import logging
import os
import pickle
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from transferkit._backend import keras_home
from transferkit.data.checks import class_indices
from transferkit.data.folder import (
    Entries,
    classify_entries,
    is_image,
    list_entries,
    read_image_tree,
)
from transferkit.data.splits import DataSplits
from transferkit.data.stratify import _check_fraction, _train_val, limit_indices
from transferkit.errors import ConfigurationError, CorruptDataError, DataError, DataNotFoundError

logger = logging.getLogger("transferkit")

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""CIFAR-10 class names in the dataset's own label order (airplane=0 ... truck=9)."""

_CIFAR_PICKLE_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_PICKLE_TEST = "test_batch"

def load_cifar10(
    data_dir: str | os.PathLike | None = None,
    *,
    validation_split: float = 0.1,
    classes: Sequence[str | int] | None = None,
    limit_per_class: int | None = None,
    seed: int = 0,
    strict: bool = False,
    download: bool = True,
) -> DataSplits:
    """Load CIFAR-10 as uint8 arrays with a stratified validation split.

    The source is, in order: ``data_dir``; the ``TRANSFERKIT_DATA`` environment
    variable; the Keras cache (``$KERAS_HOME/datasets/cifar-10-batches-py``);
    a download through ``keras.datasets.cifar10``. A source may be the official
    ``cifar-10-python.tar.gz``, its extracted ``cifar-10-batches-py/`` folder,
    or an image-folder tree (``train/<class>/*``, ``test/<class>/*``) as a
    folder or a ``.tar.gz``/``.zip`` archive. Labels follow CIFAR-10's order
    (airplane=0 ... truck=9) whatever the layout.

    Args:
        data_dir: A file or folder holding CIFAR-10 in one of those layouts.
        validation_split: Fraction of the training images held out for
            validation, per class (stratified); the test split is never touched.
        classes: Keep only these classes (names or indices), relabelled
            ``0..k-1`` in the order given.
        limit_per_class: Keep at most this many images per class in train and
            in test (a seeded random choice), for quick experiments.
        seed: Seed for the validation split and ``limit_per_class``.
        strict: Fail on an unreadable image instead of skipping it with a warning.
        download: Allow the final download step.

    Returns:
        A :class:`DataSplits` with ``class_names`` in CIFAR-10 order.

    Raises:
        DataNotFoundError: If ``data_dir`` (or ``TRANSFERKIT_DATA``) does not
            exist, or no source is found and the download fails.
        CorruptDataError: For an unreadable archive.
        DataError: For a tree whose class folders are not CIFAR-10's.
        ConfigurationError: For ``validation_split`` outside ``[0, 1)``.
        UnknownNameError: For a name in ``classes`` that is not a CIFAR-10 class.

    Every argument is checked before an image is read.

    Example:
        >>> data = load_cifar10("cifar10-jpeg.tar.gz", limit_per_class=500)  # doctest: +SKIP
        >>> data.x_train.shape  # doctest: +SKIP
        (4500, 32, 32, 3)
    """
    _check_fraction(validation_split)
    if limit_per_class is not None and limit_per_class < 1:
        raise ConfigurationError(f"limit_per_class must be >= 1, got {limit_per_class}.")
    if classes is not None:  # a typo fails now, not after decoding 60,000 images
        class_indices(classes, CIFAR10_CLASSES)
    path = _resolve_cifar_source(data_dir)
    if path is None:
        if not download:
            raise DataNotFoundError(_cifar_missing_message())
        (x_tr, y_tr), (x_te, y_te) = _download_cifar10()
        source = "keras.datasets.cifar10 download"
    else:
        limit = None if limit_per_class is None else (limit_per_class, seed)
        (x_tr, y_tr), (x_te, y_te), limited = _read_cifar10(path, strict=strict, limit=limit)
        source = str(path)
    if limit_per_class is not None and not limited:
        tr = limit_indices(y_tr, limit_per_class, seed)
        te = limit_indices(y_te, limit_per_class, seed + 1)
        x_tr, y_tr, x_te, y_te = x_tr[tr], y_tr[tr], x_te[te], y_te[te]
    x_tr, y_tr, x_val, y_val = _train_val(x_tr, y_tr, validation_split, seed)
    data = DataSplits(x_tr, y_tr, x_val, y_val, x_te, y_te, CIFAR10_CLASSES, source=source)
    if classes is not None:
        data = data.subset(classes)
    data.provenance = {"loader": "cifar10", "path": source, "validation_split": validation_split,
                       "classes": list(classes) if classes is not None else None,
                       "limit_per_class": limit_per_class, "seed": seed}
    logger.info("Loaded %r", data)
    return data


def cifar10_search_paths() -> list[Path]:
    """Places :func:`load_cifar10` looks in when no ``data_dir`` is given, in order."""
    paths = []
    env = os.environ.get("TRANSFERKIT_DATA")
    if env:
        paths.append(Path(env).expanduser())
    cache = keras_home() / "datasets"
    paths += [
        cache / "cifar-10-batches-py",
        cache / "cifar-10-batches-py.tar.gz",
        cache / "cifar-10-python.tar.gz",
    ]
    return paths


def _resolve_cifar_source(data_dir: str | os.PathLike | None) -> Path | None:
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if not path.exists():
            raise DataNotFoundError(
                f"Data path {str(path)!r} does not exist. Pass data_dir= a CIFAR-10 file or "
                "folder: cifar-10-python.tar.gz, its cifar-10-batches-py/ folder, or a "
                "train/<class>/ + test/<class>/ image tree (a folder or an archive).")
        return path
    env = os.environ.get("TRANSFERKIT_DATA")
    if env and not Path(env).expanduser().exists():
        raise DataNotFoundError(
            f"TRANSFERKIT_DATA points to {env!r}, which does not exist. "
            "Fix or unset the variable."
        )
    for path in cifar10_search_paths():
        if path.exists():
            return path
    return None


def _cifar_missing_message() -> str:
    places = "\n  ".join(str(p) for p in cifar10_search_paths())
    return (
        "CIFAR-10 was not found locally and could not be downloaded. Pass data_dir=, "
        "set TRANSFERKIT_DATA, or place cifar-10-python.tar.gz (or its extracted "
        f"cifar-10-batches-py/ folder) at one of:\n  {places}"
    )


def _download_cifar10(timeout: float = 30.0):
    import keras

    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # bounds a stalled connection, not a slow download
    try:
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.cifar10.load_data()
    except Exception as exc:  # Keras raises bare Exception on URL failures
        raise DataNotFoundError(f"{_cifar_missing_message()}\nDownload error: {exc}") from exc
    finally:
        socket.setdefaulttimeout(previous)
    return (x_tr, y_tr.reshape(-1).astype(np.int64)), (x_te, y_te.reshape(-1).astype(np.int64))


def _read_cifar10(path: Path, *, strict: bool, limit: tuple[int, int] | None = None):
    """Train and test arrays, and whether ``limit`` (per class, seed) was applied already."""
    entries = list_entries(path)
    names = {parts[-1] for parts in entries}
    if _CIFAR_PICKLE_TEST in names and set(_CIFAR_PICKLE_TRAIN) <= names:
        return (*_read_cifar_pickles(entries), False)
    if limit is not None:  # decode only the images kept: 400 of 60,000 for a quick run
        entries = _limited_entries(entries, *limit)
    tree = read_image_tree(entries, path, image_size=None, strict=strict)
    missing = {"train", "test"} - set(tree)
    if missing:
        raise DataError(
            f"{path} is not a CIFAR-10 layout: expected cifar-10-batches-py pickles or "
            f"train/<class>/ and test/<class>/ folders; no {sorted(missing)} split found."
        )
    return _cifar_labels(tree["train"], path), _cifar_labels(tree["test"], path), limit is not None


def _limited_entries(entries: Entries, per_class: int, seed: int) -> Entries:
    """``entries`` less the images ``limit_per_class`` would drop, chosen as from the arrays.

    The labels follow the order the arrays would have (CIFAR-10's classes, each
    folder's files sorted), so the same images are kept as when all are decoded
    and then limited (unreadable files aside).
    """
    groups, _ = classify_entries(entries)
    keep = set()
    for split, split_seed in (("train", seed), ("test", seed + 1)):
        folders = {c.lower(): files for (s, c), files in groups.items() if s == split}
        files = [f for name in CIFAR10_CLASSES for f in folders.get(name, [])]
        labels = np.concatenate([np.full(len(folders.get(name, [])), i)
                                 for i, name in enumerate(CIFAR10_CLASSES)])
        keep.update(files[i][0] for i in limit_indices(labels, per_class, split_seed))
    return {parts: read for parts, read in entries.items()
            if "/".join(parts) in keep or not is_image(parts)}


def _cifar_labels(split: dict[str, np.ndarray], path: Path):
    lower = {name.lower(): name for name in split}
    unknown = sorted(set(lower) - set(CIFAR10_CLASSES))
    if unknown:
        raise DataError(
            f"{path}: class folders {unknown} are not CIFAR-10 classes "
            f"({', '.join(CIFAR10_CLASSES)}). Use load_image_folder() for other datasets."
        )
    xs, ys = [], []
    for label, name in enumerate(CIFAR10_CLASSES):
        if name in lower:
            images = split[lower[name]]
            xs.append(images)
            ys.append(np.full(len(images), label, np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def _read_cifar_pickles(entries: dict[tuple[str, ...], Callable[[], bytes]]):
    by_name = {parts[-1]: read for parts, read in entries.items()}

    def batch(name):
        try:
            d = pickle.loads(by_name[name]())  # noqa: S301 - the official format is pickle
        except Exception as exc:
            raise CorruptDataError(f"CIFAR-10 batch {name!r} could not be read: {exc}") from exc
        x = np.asarray(d[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], np.int64)

    train = [batch(n) for n in _CIFAR_PICKLE_TRAIN]
    x_te, y_te = batch(_CIFAR_PICKLE_TEST)
    x_tr = np.concatenate([b[0] for b in train])
    y_tr = np.concatenate([b[1] for b in train])
    return (np.ascontiguousarray(x_tr), y_tr), (np.ascontiguousarray(x_te), y_te)
