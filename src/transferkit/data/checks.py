"""Checks of a dataset's classes: the choice of classes, and counts that give a poor model.

:func:`class_indices` resolves a choice of classes (names or indices) before
any image is decoded, so a typo costs nothing. :func:`warn_about_counts` runs
when :func:`~transferkit.data.folder.load_image_folder` has split a folder: too
few images in a class, or one class dominating. Each warning says what to
expect and what to do.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from transferkit.errors import DataError, unknown_name

FEW_IMAGES = 10
"""A class with fewer training images than this gets a warning."""
IMBALANCE_RATIO = 3.0
"""A largest class at least this many times the smallest gets a warning."""


def warn_about_counts(y_train: np.ndarray, class_names: tuple[str, ...]) -> list[str]:
    """Warn about classes with few training images and about a dominating class.

    Args:
        y_train: Training labels.
        class_names: Name of each label.

    Returns:
        The warning messages (also issued as ``UserWarning``).

    Example:
        >>> import warnings
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     messages = warn_about_counts(np.array([0] * 40 + [1] * 4), ("cat", "dog"))
        >>> [m.split(":")[0] for m in messages]
        ['Few training images', 'Unbalanced classes']
    """
    counts = np.bincount(np.asarray(y_train, np.int64), minlength=len(class_names))
    messages = []
    few = [f"{class_names[i]} ({n})" for i, n in enumerate(counts) if 0 < n < FEW_IMAGES]
    if few:
        messages.append(
            f"Few training images: {', '.join(few)} has fewer than {FEW_IMAGES}. Expect "
            "accuracy to vary by many points between seeds and splits; keep the backbone "
            "frozen (transferkit train --epochs 0), and add photos of those classes if you can "
            "(20-50 per class already help).")
    present = counts[counts > 0]
    if len(present) > 1 and present.max() >= IMBALANCE_RATIO * present.min():
        big, small = int(np.argmax(counts)), int(np.argmin(np.where(counts > 0, counts, np.inf)))
        messages.append(
            f"Unbalanced classes: {class_names[big]} has {counts[big]} training images, "
            f"{class_names[small]} {counts[small]} ({counts[big] / counts[small]:.1f}x). The model "
            "will favour the large classes unless the classes are weighed (train with "
            "class_weight='balanced'): read per-class recall and balanced accuracy in the "
            "report, not only accuracy, and add images of the small classes if you can.")
    for message in messages:
        warnings.warn(message, stacklevel=3)
    return messages


def class_indices(classes: Sequence[str | int], class_names: Sequence[str]) -> list[int]:
    """The label index of each of ``classes`` (names or indices) among ``class_names``.

    What :meth:`~transferkit.data.splits.DataSplits.subset` keeps, checked without
    any images, so a loader refuses a typo before it decodes anything.

    Raises:
        UnknownNameError: For a name not in ``class_names`` (close matches listed).
        DataError: For a bare string, an index out of range, duplicates, or
            fewer than two classes.

    Example:
        >>> class_indices(["ship", 1], ("airplane", "automobile", "ship"))
        [2, 1]
    """
    if isinstance(classes, str):
        raise DataError(f"classes must be a list of class names or indices, got the string "
                        f"{classes!r}; pass [{classes!r}, ...].")
    indices = []
    for c in classes:
        if isinstance(c, (int, np.integer)) and not isinstance(c, bool):
            if not 0 <= int(c) < len(class_names):
                raise DataError(f"Class index {c} is out of range 0..{len(class_names) - 1}.")
            indices.append(int(c))
        elif c in class_names:
            indices.append(list(class_names).index(c))
        else:
            raise unknown_name("class", c, class_names)
    if len(set(indices)) != len(indices):
        raise DataError(f"Duplicate classes in subset: {list(classes)}.")
    if len(indices) < 2:
        raise DataError(f"A classification dataset needs at least 2 classes, got {len(indices)}.")
    return indices
