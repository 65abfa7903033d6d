"""Datasets as uint8 arrays: CIFAR-10, image folders, class subsets, tf.data streams.

Images stay ``uint8`` at their native size in memory; models own their
preprocessing (see :mod:`transferkit.models`). A :class:`DataSplits` never
holds float copies, and :meth:`DataSplits.as_tf_dataset` converts one batch at
a time.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
import tarfile
import warnings
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from transferkit.errors import (
    ConfigurationError,
    CorruptDataError,
    DataError,
    DataNotFoundError,
    unknown_name,
)

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

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "test": "test",
    "testing": "test",
}
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif"})
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".tar.bz2", ".tar.xz", ".zip")
_CIFAR_PICKLE_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
_CIFAR_PICKLE_TEST = "test_batch"


@dataclass
class DataSplits:
    """Train / validation / test images (uint8, NHWC) with integer labels.

    Attributes:
        x_train: Training images, ``uint8`` of shape ``(n, h, w, c)``.
        y_train: Training labels, integers in ``0..num_classes-1``.
        x_val: Validation images (may hold zero images).
        y_val: Validation labels.
        x_test: Test images.
        y_test: Test labels.
        class_names: One name per label, in label order.
        source: Where the data came from, for run records.

    Example:
        >>> import numpy as np
        >>> x = np.zeros((4, 8, 8, 3), np.uint8); y = np.array([0, 1, 0, 1])
        >>> d = DataSplits(x, y, x[:0], y[:0], x, y, ("cat", "dog"))
        >>> d.num_classes, d.image_shape
        (2, (8, 8, 3))
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str = field(default="arrays")

    def __post_init__(self) -> None:
        self.class_names = tuple(str(c) for c in self.class_names)
        if len(self.class_names) < 2:
            raise DataError(
                f"A classification dataset needs at least 2 classes, got {len(self.class_names)}."
            )
        if len(set(self.class_names)) != len(self.class_names):
            raise DataError(f"Class names must be unique, got {self.class_names}.")
        shapes = set()
        for split in SPLITS:
            x, y = self.split(split)
            check_images(x, what=f"x_{split}")
            y = check_labels(y, len(self.class_names), what=f"y_{split}")
            setattr(self, f"y_{split}", y)
            if len(x) != len(y):
                raise DataError(
                    f"x_{split} holds {len(x)} images but y_{split} holds {len(y)} labels."
                )
            if len(x):
                shapes.add(x.shape[1:])
        if len(self.x_train) == 0:
            raise DataError("The training split is empty: there is nothing to train on.")
        if len(shapes) > 1:
            raise DataError(f"All splits must share one image shape, got {sorted(shapes)}.")

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """Shape of one image, ``(height, width, channels)``."""
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(images, labels)`` of one split.

        Args:
            name: ``"train"``, ``"val"`` or ``"test"`` (``"validation"`` works too).

        Returns:
            The split's image array and label array.

        Raises:
            ConfigurationError: For an unknown split name.
        """
        key = _SPLIT_ALIASES.get(str(name).lower())
        if key is None:
            raise ConfigurationError(f"Unknown split {name!r}; use one of {SPLITS}.")
        return getattr(self, f"x_{key}"), getattr(self, f"y_{key}")

    def counts(self) -> dict[str, list[int]]:
        """Images per class in each split, e.g. ``{"train": [4500, ...], ...}``."""
        return {
            s: np.bincount(self.split(s)[1], minlength=self.num_classes).tolist() for s in SPLITS
        }

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.split(s)[1])}" for s in SPLITS)
        return (
            f"DataSplits({sizes}, image_shape={self.image_shape}, "
            f"classes={list(self.class_names)}, source={self.source!r})"
        )

    def subset(self, classes: Sequence[str | int]) -> DataSplits:
        """Keep only some classes, relabelled ``0..k-1`` in the order given.

        Args:
            classes: Class names or current label indices, at least two.

        Returns:
            A new :class:`DataSplits` whose ``class_names`` are the chosen classes.

        Raises:
            UnknownNameError: For a class name that does not exist.
            DataError: For an index out of range, duplicates or fewer than two classes.

        Example:
            >>> d3 = data.subset(["horse", "ship", "truck"])  # doctest: +SKIP
        """
        indices = [self._class_index(c) for c in classes]
        if len(set(indices)) != len(indices):
            raise DataError(f"Duplicate classes in subset: {list(classes)}.")
        lookup = np.full(self.num_classes, -1, dtype=np.int64)
        lookup[indices] = np.arange(len(indices))
        arrays = {}
        for split in SPLITS:
            x, y = self.split(split)
            keep = lookup[y] >= 0
            arrays[f"x_{split}"] = x[keep]
            arrays[f"y_{split}"] = lookup[y[keep]]
        names = tuple(self.class_names[i] for i in indices)
        return DataSplits(**arrays, class_names=names, source=f"{self.source} [subset {names}]")

    def limit(self, per_class: int, *, seed: int = 0) -> DataSplits:
        """Keep at most ``per_class`` images of each class in every split (seeded choice).

        Args:
            per_class: Largest number of images kept per class and split.
            seed: Seed of the random choice.

        Returns:
            A new, smaller :class:`DataSplits`.
        """
        if per_class < 1:
            raise ConfigurationError(f"per_class must be >= 1, got {per_class}.")
        arrays = {}
        for i, split in enumerate(SPLITS):
            x, y = self.split(split)
            idx = _limit_indices(y, per_class, seed + i)
            arrays[f"x_{split}"], arrays[f"y_{split}"] = x[idx], y[idx]
        return DataSplits(**arrays, class_names=self.class_names, source=self.source)

    def as_tf_dataset(
        self,
        split: str = "train",
        batch_size: int = 32,
        *,
        shuffle: bool | None = None,
        augment: bool = False,
        seed: int = 0,
    ):
        """Stream a split as a batched, prefetched ``tf.data.Dataset``.

        Only index batches are shuffled; images are gathered and converted to
        float32 one batch at a time, so no float copy of the split is made.

        Args:
            split: ``"train"``, ``"val"`` or ``"test"``.
            batch_size: Images per batch.
            shuffle: Reshuffle every epoch; defaults to True for the training split.
            augment: Apply :func:`augmentation` (random flip, translation, zoom).
            seed: Seed for shuffling and augmentation.

        Returns:
            A ``tf.data.Dataset`` of ``(images float32 0-255, labels int32)`` batches.

        Raises:
            DataError: If the split is empty.

        Example:
            >>> ds = data.as_tf_dataset("train", 64, augment=True)  # doctest: +SKIP
            >>> model.fit(ds, epochs=3)  # doctest: +SKIP
        """
        import tensorflow as tf

        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}.")
        x, y = self.split(split)
        if len(x) == 0:
            raise DataError(f"The {split!r} split is empty.")
        if shuffle is None:
            shuffle = _SPLIT_ALIASES[split.lower()] == "train"
        images = tf.constant(x)
        labels = tf.constant(y.astype(np.int32))
        ds = tf.data.Dataset.range(len(x))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)

        def gather(idx):
            return tf.cast(tf.gather(images, idx), tf.float32), tf.gather(labels, idx)

        ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        if augment:
            layers = augmentation(seed=seed)
            ds = ds.map(
                lambda im, lab: (layers(im, training=True), lab),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return ds.prefetch(tf.data.AUTOTUNE)

    def _class_index(self, c: str | int) -> int:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < self.num_classes:
                raise DataError(f"Class index {c} is out of range 0..{self.num_classes - 1}.")
            return int(c)
        if c not in self.class_names:
            raise unknown_name("class", c, self.class_names)
        return self.class_names.index(c)


def augmentation(seed: int = 0):
    """The standard light augmentation for small natural images, as Keras layers.

    Random horizontal flip, translation up to 10 % and zoom up to 10 %. The
    layers are pixel-range agnostic, so they work on raw 0-255 images.

    Args:
        seed: Seed of the random transformations.

    Returns:
        A ``keras.Sequential`` to call with ``training=True``.

    Example:
        >>> aug = augmentation(seed=1)  # doctest: +SKIP
        >>> augmented = aug(batch, training=True)  # doctest: +SKIP
    """
    import keras

    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
            keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
        ],
        name="augmentation",
    )


# --------------------------------------------------------------------------- checks


def check_images(x: object, *, what: str = "images") -> np.ndarray:
    """Check that ``x`` is a batch of raw images: uint8, shape ``(n, h, w, 1 or 3)``.

    Args:
        x: The array to check.
        what: Its name in error messages.

    Returns:
        ``x`` as a NumPy array.

    Raises:
        DataError: Naming what is wrong and how to fix it.
    """
    if not isinstance(x, np.ndarray):
        raise DataError(f"{what} must be a NumPy array, got {type(x).__name__}.")
    if x.ndim != 4:
        raise DataError(
            f"{what} must have shape (n, height, width, channels), got shape {x.shape}. "
            "Add a batch axis with x[None] for a single image."
        )
    if x.shape[-1] not in (1, 3):
        raise DataError(
            f"{what} must have 1 or 3 channels (channels last), got shape {x.shape}."
        )
    if x.dtype != np.uint8:
        raise DataError(
            f"{what} must be raw uint8 pixels 0-255, got dtype {x.dtype}. "
            "Models own their preprocessing; pass images before any scaling."
        )
    return x


def check_labels(y: object, num_classes: int, *, what: str = "labels") -> np.ndarray:
    """Check integer labels in ``0..num_classes-1`` and return them as a 1-D int64 array.

    Args:
        y: Labels, shape ``(n,)`` or ``(n, 1)``.
        num_classes: Number of classes.
        what: Its name in error messages.

    Returns:
        The labels, flattened to ``int64``.

    Raises:
        DataError: For non-integer labels, a wrong shape or values out of range.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise DataError(
            f"{what} must be integer class indices of shape (n,), got shape {y.shape}. "
            "Convert one-hot labels with labels.argmax(axis=1)."
        )
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} must be integers, got dtype {y.dtype}.")
    y = y.astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(
            f"{what} must lie in 0..{num_classes - 1}, found values from {y.min()} to {y.max()}."
        )
    return y


def stratified_split(
    labels: np.ndarray, fraction: float, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held-out) with the same class proportions.

    Each class contributes ``round(fraction * n_class)`` samples to the
    held-out part (at least one where ``fraction > 0`` and the class has two or
    more samples). Both index arrays are sorted.

    Args:
        labels: 1-D integer labels.
        fraction: Held-out fraction in ``[0, 1)``.
        seed: Seed of the random choice.

    Returns:
        ``(keep_indices, held_out_indices)``.

    Raises:
        ConfigurationError: If ``fraction`` is outside ``[0, 1)``.
    """
    fraction = _check_fraction(fraction)
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        n = int(round(fraction * len(idx)))
        if fraction > 0 and n == 0 and len(idx) >= 2:
            n = 1
        n = min(n, len(idx) - 1) if len(idx) > 1 else 0
        held.append(rng.permutation(idx)[:n])
    held_idx = np.sort(np.concatenate(held)) if held else np.zeros(0, np.int64)
    mask = np.ones(len(labels), bool)
    mask[held_idx] = False
    return np.flatnonzero(mask), held_idx


def _check_fraction(fraction: float) -> float:
    if not isinstance(fraction, (int, float)) or not 0 <= fraction < 1:
        raise ConfigurationError(f"validation_split must be in [0, 1), got {fraction!r}.")
    return float(fraction)


def _limit_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _train_val(
    x: np.ndarray, y: np.ndarray, validation_split: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keep, held = stratified_split(y, validation_split, seed=seed)
    return x[keep], y[keep], x[held], y[held]


# --------------------------------------------------------------------------- CIFAR-10


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

    Example:
        >>> data = load_cifar10("cifar10-jpeg.tar.gz", limit_per_class=500)  # doctest: +SKIP
        >>> data.x_train.shape  # doctest: +SKIP
        (4500, 32, 32, 3)
    """
    _check_fraction(validation_split)
    if limit_per_class is not None and limit_per_class < 1:
        raise ConfigurationError(f"limit_per_class must be >= 1, got {limit_per_class}.")
    path = _resolve_cifar_source(data_dir)
    if path is None:
        if not download:
            raise DataNotFoundError(_cifar_missing_message())
        (x_tr, y_tr), (x_te, y_te) = _download_cifar10()
        source = "keras.datasets.cifar10 download"
    else:
        (x_tr, y_tr), (x_te, y_te) = _read_cifar10(path, strict=strict)
        source = str(path)
    if limit_per_class is not None:
        tr = _limit_indices(y_tr, limit_per_class, seed)
        te = _limit_indices(y_te, limit_per_class, seed + 1)
        x_tr, y_tr, x_te, y_te = x_tr[tr], y_tr[tr], x_te[te], y_te[te]
    x_tr, y_tr, x_val, y_val = _train_val(x_tr, y_tr, validation_split, seed)
    data = DataSplits(x_tr, y_tr, x_val, y_val, x_te, y_te, CIFAR10_CLASSES, source=source)
    if classes is not None:
        data = data.subset(classes)
    logger.info("Loaded %r", data)
    return data


def keras_home() -> Path:
    """The Keras cache folder (``$KERAS_HOME``, default ``~/.keras``) as Keras itself resolves it."""
    try:
        from keras.src.backend.config import keras_home as _keras_home

        return Path(_keras_home()).expanduser()
    except ImportError:  # pragma: no cover - depends on Keras internals
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()


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
            raise DataNotFoundError(f"Data path {str(path)!r} does not exist.")
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


def _read_cifar10(path: Path, *, strict: bool):
    entries = _list_entries(path)
    names = {parts[-1] for parts in entries}
    if _CIFAR_PICKLE_TEST in names and set(_CIFAR_PICKLE_TRAIN) <= names:
        return _read_cifar_pickles(entries)
    tree = _read_tree(entries, path, image_size=None, strict=strict)
    missing = {"train", "test"} - set(tree)
    if missing:
        raise DataError(
            f"{path} is not a CIFAR-10 layout: expected cifar-10-batches-py pickles or "
            f"train/<class>/ and test/<class>/ folders; no {sorted(missing)} split found."
        )
    return (_cifar_labels(tree["train"], path)), (_cifar_labels(tree["test"], path))


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


# --------------------------------------------------------------------------- image folders


def load_image_folder(
    path: str | os.PathLike,
    *,
    image_size: int | tuple[int, int] | None = None,
    validation_split: float = 0.1,
    test_split: float = 0.1,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    strict: bool = False,
) -> DataSplits:
    """Load a class-per-folder image dataset (a folder or a ``.tar.gz``/``.zip``).

    Split folders named ``train``, ``val``/``valid``/``validation`` and ``test``
    are recognised (``train/<class>/img.jpg``); a tree without them
    (``<class>/img.jpg``) is split by the loader. Without a validation folder,
    the validation split is carved from train; without a test folder, the test
    split is carved from what remains (both stratified and seeded).

    Args:
        path: Folder or archive.
        image_size: Resize every image to this size (int or ``(height, width)``).
            Required when the images differ in size.
        validation_split: Fraction held out for validation when the tree has
            no validation folder.
        test_split: Fraction held out for testing when the tree has no test folder.
        class_names: Label order; defaults to the sorted folder names.
        seed: Seed for the splits.
        strict: Raise on an unreadable image instead of skipping it with a warning.

    Returns:
        A :class:`DataSplits` of uint8 images.

    Raises:
        DataNotFoundError: If ``path`` does not exist.
        DataError: For an empty or classless tree, differing image sizes
            without ``image_size``, or a class with no images in the train or
            test split (in the validation split too with ``strict=True``;
            otherwise that only warns).
        CorruptDataError: For an unreadable archive, or an unreadable image with
            ``strict=True``.
        UnknownNameError: If ``class_names`` names a folder that does not exist.

    Example:
        >>> flowers = load_image_folder("flowers/", image_size=96)  # doctest: +SKIP
        >>> model = build_transfer_model(num_classes=flowers.num_classes,
        ...                              input_shape=flowers.image_shape)  # doctest: +SKIP
    """
    _check_fraction(validation_split)
    _check_fraction(test_split)
    if validation_split + test_split >= 1:
        raise ConfigurationError("validation_split + test_split must be below 1.")
    root = Path(path).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"Image folder {str(root)!r} does not exist.")
    size = _as_size(image_size)
    tree = _read_tree(_list_entries(root), root, image_size=size, strict=strict)
    found = sorted({c for split in tree.values() for c in split})
    names = tuple(class_names) if class_names is not None else tuple(found)
    for c in found:
        if c not in names:
            raise DataError(f"{root}: folder class {c!r} is missing from class_names {names}.")
    for c in names:
        if c not in found:
            raise unknown_name("class", c, found)

    def arrays(split):
        xs, ys = [], []
        for label, name in enumerate(names):
            if name in tree.get(split, {}):
                xs.append(tree[split][name])
                ys.append(np.full(len(tree[split][name]), label, np.int64))
        return np.concatenate(xs), np.concatenate(ys)

    pooled = "all" if "all" in tree else "train"
    x_pool, y_pool = arrays(pooled)
    if "test" in tree:
        x_te, y_te = arrays("test")
    else:
        keep, held = stratified_split(y_pool, test_split, seed=seed + 1)
        x_te, y_te = x_pool[held], y_pool[held]
        x_pool, y_pool = x_pool[keep], y_pool[keep]
    if "val" in tree:
        x_tr, y_tr = x_pool, y_pool
        x_val, y_val = arrays("val")
    else:
        # Re-scale so the fraction is of the whole pool, not of what test left.
        frac = validation_split / (1 - (0 if "test" in tree else test_split))
        x_tr, y_tr, x_val, y_val = _train_val(x_pool, y_pool, min(frac, 0.99), seed)
    data = DataSplits(x_tr, y_tr, x_val, y_val, x_te, y_te, names, source=str(root))
    _check_missing_classes(data, strict=strict)
    logger.info("Loaded %r", data)
    return data


def _check_missing_classes(data: DataSplits, *, strict: bool) -> None:
    """A class absent from train cannot be learned, one absent from test cannot be scored."""
    for split, counts in data.counts().items():
        missing = [data.class_names[i] for i, n in enumerate(counts) if n == 0]
        if not missing or not sum(counts):
            continue
        message = (
            f"The {split!r} split has no images of classes {missing}. Add images of these "
            "classes to that split's folders, or pass class_names=[...] without them."
        )
        if split == "val" and not strict:
            warnings.warn(message, stacklevel=3)  # a thin validation split still trains
        else:
            raise DataError(message)


def _as_size(image_size: int | tuple[int, int] | None) -> tuple[int, int] | None:
    if image_size is None:
        return None
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if len(size) != 2 or any(int(s) < 1 for s in size):
        raise ConfigurationError(f"image_size must be a positive int or (h, w), got {image_size!r}.")
    return int(size[0]), int(size[1])


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(_ARCHIVE_SUFFIXES)


def _list_entries(path: Path) -> dict[tuple[str, ...], Callable[[], bytes]]:
    """Map relative path parts to a function returning that file's bytes."""
    if path.is_dir():
        entries = {}
        for dirpath, _, files in os.walk(path):
            for f in files:
                full = Path(dirpath, f)
                entries[full.relative_to(path).parts] = full.read_bytes
        return entries
    if not _is_archive(path):
        raise DataError(
            f"{path} is neither a folder nor an archive ({', '.join(_ARCHIVE_SUFFIXES)})."
        )
    try:
        if path.name.lower().endswith(".zip"):
            return _zip_entries(path)
        return _tar_entries(path)
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise CorruptDataError(f"Archive {path} could not be read ({exc}).") from exc


def _tar_entries(path: Path) -> dict[tuple[str, ...], Callable[[], bytes]]:
    entries = {}
    with tarfile.open(path, "r:*") as tar:
        for member in tar:
            if member.isfile():
                data = tar.extractfile(member).read()
                entries[tuple(Path(member.name).parts)] = lambda d=data: d
    return entries


def _zip_entries(path: Path) -> dict[tuple[str, ...], Callable[[], bytes]]:
    entries = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if not info.is_dir():
                data = zf.read(info)
                entries[tuple(Path(info.filename).parts)] = lambda d=data: d
    return entries


def _classify_entries(
    entries: dict[tuple[str, ...], Callable[[], bytes]],
) -> tuple[dict[tuple[str, str], list[tuple[str, Callable[[], bytes]]]], list[str]]:
    """Group image files by (split, class); return the groups and skipped non-images."""
    groups: dict[tuple[str, str], list] = {}
    skipped = []
    has_splits = any(
        len(p) >= 3 and p[-3].lower() in _SPLIT_ALIASES for p in entries if _is_image(p)
    )
    for parts in sorted(entries):
        if any(part.startswith(".") or part == "__MACOSX" for part in parts):
            continue
        if not _is_image(parts):
            skipped.append("/".join(parts))
            continue
        if len(parts) < 2:
            skipped.append("/".join(parts))
            continue
        if has_splits:
            if len(parts) < 3 or parts[-3].lower() not in _SPLIT_ALIASES:
                skipped.append("/".join(parts))
                continue
            split = _SPLIT_ALIASES[parts[-3].lower()]
        else:
            split = "all"
        groups.setdefault((split, parts[-2]), []).append(("/".join(parts), entries[parts]))
    return groups, skipped


def _is_image(parts: tuple[str, ...]) -> bool:
    return Path(parts[-1]).suffix.lower() in IMAGE_EXTENSIONS


def _read_tree(
    entries: dict[tuple[str, ...], Callable[[], bytes]],
    root: Path,
    *,
    image_size: tuple[int, int] | None,
    strict: bool,
) -> dict[str, dict[str, np.ndarray]]:
    """Decode an image tree into ``{split: {class: uint8 array}}``."""
    groups, skipped = _classify_entries(entries)
    if skipped:
        shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
        warnings.warn(
            f"{root}: skipped {len(skipped)} file(s) that are not images in a "
            f"<class>/ folder: {shown}",
            stacklevel=3,
        )
    if not groups:
        raise DataError(
            f"{root} holds no images in class folders. Expected <class>/<image> or "
            f"train/<class>/<image> with extensions {sorted(IMAGE_EXTENSIONS)}."
        )
    flat = [(key, name, read) for key, files in groups.items() for name, read in files]
    images, bad = _decode_all([read() for _, _, read in flat], image_size)
    if bad:
        names = [flat[i][1] for i in bad]
        shown = ", ".join(names[:5]) + (" ..." if len(names) > 5 else "")
        if strict:
            raise CorruptDataError(f"{root}: {len(bad)} unreadable image(s): {shown}")
        warnings.warn(f"{root}: skipped {len(bad)} unreadable image(s): {shown}", stacklevel=3)
    shapes = {im.shape for im in images if im is not None}
    if len(shapes) > 1:
        raise DataError(
            f"{root}: images differ in size ({sorted(shapes)[:4]} ...). "
            "Pass image_size= to resize them to one size."
        )
    tree: dict[str, dict[str, list[np.ndarray]]] = {}
    for (key, _, _), im in zip(flat, images):
        if im is not None:
            tree.setdefault(key[0], {}).setdefault(key[1], []).append(im)
    if not tree:
        raise DataError(f"{root}: no readable images.")
    return {s: {c: np.stack(v) for c, v in classes.items()} for s, classes in tree.items()}


def _decode_all(
    blobs: list[bytes], image_size: tuple[int, int] | None
) -> tuple[list[np.ndarray | None], list[int]]:
    """Decode encoded images in parallel; unreadable ones become None and are listed."""
    import tensorflow as tf

    def decode(i, blob):
        image = tf.io.decode_image(blob, channels=3, expand_animations=False)
        if image_size is not None:
            image = tf.image.resize(image, image_size, antialias=True)
            image = tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)
        return i, image

    ds = tf.data.Dataset.from_tensor_slices((tf.range(len(blobs)), tf.constant(blobs)))
    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    ds = ds.ignore_errors()
    images: list[np.ndarray | None] = [None] * len(blobs)
    for i, image in ds.as_numpy_iterator():
        images[int(i)] = image
    bad = [i for i, im in enumerate(images) if im is None]
    return images, bad


# --------------------------------------------------------------------------- synthetic


def make_synthetic_dataset(
    num_classes: int = 10,
    *,
    per_class: int = 100,
    image_size: int = 32,
    test_per_class: int | None = None,
    validation_split: float = 0.1,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> DataSplits:
    """Generate a small learnable image dataset (for offline demos and tests).

    Each class is a distinct colour and stripe orientation with noise, so any
    working model learns it quickly. It is clearly labelled as synthetic in
    ``source``; never report its accuracy as a CIFAR-10 figure.

    Args:
        num_classes: Number of classes (at least 2).
        per_class: Training images per class (before the validation split).
        image_size: Height and width in pixels.
        test_per_class: Test images per class (default: ``per_class // 4``, at least 1).
        validation_split: Fraction of training images held out for validation.
        class_names: Names; defaults to ``class_0`` ...
        seed: Seed of the generator.

    Returns:
        A :class:`DataSplits` of uint8 images.

    Example:
        >>> d = make_synthetic_dataset(3, per_class=8, image_size=16)
        >>> d.x_train.dtype, d.num_classes
        (dtype('uint8'), 3)
    """
    if num_classes < 2:
        raise ConfigurationError(f"num_classes must be >= 2, got {num_classes}.")
    rng = np.random.default_rng(seed)
    test_per_class = test_per_class or max(1, per_class // 4)
    palette = rng.uniform(40, 215, size=(num_classes, 3))
    angles = np.linspace(0, np.pi, num_classes, endpoint=False)
    yy, xx = np.mgrid[0:image_size, 0:image_size] / image_size

    def make(n):
        labels = np.repeat(np.arange(num_classes), n)
        phase = rng.uniform(0, 2 * np.pi, size=len(labels))[:, None, None]
        a = angles[labels][:, None, None]
        stripes = np.sin(12 * (xx * np.cos(a) + yy * np.sin(a)) + phase)[..., None]
        images = palette[labels][:, None, None, :] + 35 * stripes
        images += rng.normal(0, 20, size=images.shape)
        return np.clip(images, 0, 255).astype(np.uint8), labels

    x_tr, y_tr = make(per_class)
    x_te, y_te = make(test_per_class)
    x_tr, y_tr, x_val, y_val = _train_val(x_tr, y_tr, validation_split, seed)
    names = tuple(class_names) if class_names else tuple(f"class_{i}" for i in range(num_classes))
    return DataSplits(x_tr, y_tr, x_val, y_val, x_te, y_te, names, source="synthetic")
