"""Warnings about a dataset that would otherwise give a silently poor model.

:func:`warn_about_counts` runs when :func:`~transferkit.data.folder.load_image_folder`
has split a folder: too few images in a class, or one class dominating. Each
warning says what to expect and what to do.
"""

from __future__ import annotations

import warnings

import numpy as np

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
