"""A small, learnable generated dataset for offline demos and tests."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from transferkit.data.splits import DataSplits
from transferkit.data.stratify import _train_val
from transferkit.errors import ConfigurationError

logger = logging.getLogger("transferkit")


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
