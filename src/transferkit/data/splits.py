"""The dataset container: train / validation / test uint8 arrays, checks and splits.

Images stay ``uint8`` at their native size in memory; models own their
preprocessing (see :mod:`transferkit.models`). A :class:`DataSplits` never
holds float copies: training and evaluation hand the uint8 arrays to
``model.fit`` / ``model.predict`` (Keras' own data path on every backend), and
the model converts one batch at a time. :meth:`DataSplits.as_tf_dataset` is
for users who want a ``tf.data`` pipeline; it needs TensorFlow installed.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from transferkit.data.checks import class_indices
from transferkit.data.stratify import limit_indices, take
from transferkit.data.stream import ImageFiles
from transferkit.errors import ConfigurationError, DataError

logger = logging.getLogger("transferkit")

SPLITS = ("train", "val", "test")
_SPLIT_ALIASES = {**dict.fromkeys(("train", "training"), "train"),
                  **dict.fromkeys(("val", "valid", "validation"), "val"),
                  **dict.fromkeys(("test", "testing"), "test")}

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
        provenance: How to load the same splits again (loader, path, classes,
            limit, seed, image size), recorded in run configs so a report can
            rebuild the test split; empty for arrays built by hand.

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
    provenance: dict = field(default_factory=dict, repr=False, compare=False)

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
        return {s: np.bincount(self.split(s)[1], minlength=self.num_classes).tolist()
                for s in SPLITS}

    def __repr__(self) -> str:
        sizes = ", ".join(f"{s}={len(self.split(s)[1])}" for s in SPLITS)
        return (f"DataSplits({sizes}, image_shape={self.image_shape}, "
                f"classes={list(self.class_names)}, source={self.source!r})")

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
        indices = class_indices(classes, self.class_names)
        lookup = np.full(self.num_classes, -1, dtype=np.int64)
        lookup[indices] = np.arange(len(indices))
        arrays = {}
        for split in SPLITS:
            x, y = self.split(split)
            keep = np.flatnonzero(lookup[y] >= 0)
            arrays[f"x_{split}"] = take(x, keep)
            arrays[f"y_{split}"] = lookup[y[keep]]
        names = tuple(self.class_names[i] for i in indices)
        return DataSplits(**arrays, class_names=names, source=f"{self.source} [subset {names}]",
                          provenance=_then(self.provenance, {"subset": list(names)}))

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
            idx = limit_indices(y, per_class, seed + i)
            arrays[f"x_{split}"], arrays[f"y_{split}"] = take(x, idx), y[idx]
        return DataSplits(**arrays, class_names=self.class_names, source=self.source,
                          provenance=_then(self.provenance, {"limit": per_class, "seed": seed}))

    def as_tf_dataset(self, split: str = "train", batch_size: int = 32, *,
                      shuffle: bool | None = None, augment: bool = False, seed: int = 0):
        """Stream a split as a batched, prefetched ``tf.data.Dataset`` (needs TensorFlow).

        Only index batches are shuffled; images are gathered and converted to
        float32 one batch at a time, so no float copy of the split is made.
        transferkit itself does not use it: :func:`~transferkit.training.train.train`
        and :func:`~transferkit.runs.evaluation.evaluate` pass the uint8 arrays to
        Keras, which was as fast on TensorFlow (docs/backends.rst) and works on
        every backend. ``tf.data`` pipelines feed ``model.fit`` on JAX and
        PyTorch too, where TensorFlow is installed.

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
            ConfigurationError: If the split streams from disk.
            ModuleNotFoundError: If TensorFlow is not installed.

        Example:
            >>> ds = data.as_tf_dataset("train", 64, augment=True)  # doctest: +SKIP
            >>> model.fit(ds, epochs=3)  # doctest: +SKIP
        """
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}.")
        x, y = self.split(split)
        if len(x) == 0:
            raise DataError(f"The {split!r} split is empty.")
        if isinstance(x, ImageFiles):  # tf.constant would decode every image into memory
            raise ConfigurationError(
                "This split streams from disk (load_image_folder(in_memory=False)): feed it to "
                "Keras as transferkit.StreamBatches(data.x_train, data.y_train, batch_size), "
                "or load it with in_memory=True for as_tf_dataset.")
        try:
            import tensorflow as tf
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                "DataSplits.as_tf_dataset needs TensorFlow (pip install tensorflow). Without "
                "it, pass the arrays to Keras: model.fit(data.x_train, data.y_train, "
                "batch_size=...), or transferkit.AugmentedBatches for shuffled, augmented "
                "batches.", name="tensorflow") from exc
        shuffle = _SPLIT_ALIASES[split.lower()] == "train" if shuffle is None else shuffle
        images, labels = tf.constant(x), tf.constant(y.astype(np.int32))
        ds = tf.data.Dataset.range(len(x))
        if shuffle:
            ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size)

        def gather(idx):
            return tf.cast(tf.gather(images, idx), tf.float32), tf.gather(labels, idx)

        ds = ds.map(gather, num_parallel_calls=tf.data.AUTOTUNE)
        if augment:
            layers = augmentation(seed=seed)
            ds = ds.map(lambda im, lab: (layers(im, training=True), lab),
                        num_parallel_calls=tf.data.AUTOTUNE)
        return ds.prefetch(tf.data.AUTOTUNE)



def augmentation(seed: int = 0):
    """The standard light augmentation for small natural images, as Keras layers.

    Random horizontal flip, translation up to 10 % and zoom up to 10 %. The
    layers are pixel-range agnostic, so they work on raw 0-255 images, and
    run on every Keras backend. Call them on batches *outside* the model (in
    a data pipeline, or on NumPy batches as below): inside the compiled
    training step they made steps 6-10x slower on GPU with JAX and PyTorch.
    transferkit's own training augments with :func:`~transferkit.data.augment.crop_flip`
    in NumPy instead (``train(..., augment=True)``).

    Args:
        seed: Seed of the random transformations.

    Returns:
        A ``keras.Sequential`` to call with ``training=True``.

    Example:
        >>> import keras
        >>> aug = augmentation(seed=1)
        >>> batch = np.full((2, 16, 16, 3), 128, np.uint8)
        >>> keras.ops.convert_to_numpy(aug(batch, training=True)).shape
        (2, 16, 16, 3)
    """
    import keras

    return keras.Sequential([
        keras.layers.RandomFlip("horizontal", seed=seed),
        keras.layers.RandomTranslation(0.1, 0.1, fill_mode="reflect", seed=seed + 1),
        keras.layers.RandomZoom(0.1, fill_mode="reflect", seed=seed + 2),
    ], name="augmentation")


# --------------------------------------------------------------------------- checks


def check_images(x: object, *, what: str = "images") -> np.ndarray:
    """Check that ``x`` is a batch of raw images: uint8, shape ``(n, h, w, 1 or 3)``.

    Args:
        x: The array to check (or an :class:`~transferkit.data.stream.ImageFiles`,
            whose images decode when read).
        what: Its name in error messages.

    Returns:
        ``x`` itself.

    Raises:
        DataError: Naming what is wrong and how to fix it.
    """
    if not isinstance(x, (np.ndarray, ImageFiles)):
        raise DataError(f"{what} must be a NumPy array, got {type(x).__name__}.")
    if x.ndim != 4:
        raise DataError(f"{what} must have shape (n, height, width, channels), got shape "
                        f"{x.shape}. Add a batch axis with x[None] for a single image.")
    if x.shape[-1] not in (1, 3):
        raise DataError(f"{what} must have 1 or 3 channels (channels last), got shape {x.shape}.")
    if x.dtype != np.uint8:
        raise DataError(f"{what} must be raw uint8 pixels 0-255, got dtype {x.dtype}. "
                        "Models own their preprocessing; pass images before any scaling.")
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
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.ndim != 1:
        raise DataError(f"{what} must be integer class indices of shape (n,), got shape "
                        f"{y.shape}. Convert one-hot labels with labels.argmax(axis=1).")
    if y.size and not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} must be integers, got dtype {y.dtype}.")
    y = y.astype(np.int64, copy=False)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise DataError(f"{what} must lie in 0..{num_classes - 1}, found values from "
                        f"{y.min()} to {y.max()}.")
    return y


def _then(provenance: dict, step: dict) -> dict:
    """``provenance`` with one more step applied after loading (empty stays empty)."""
    return {**provenance, "then": [*provenance.get("then", []), step]} if provenance else {}
