"""How splits are drawn: stratified held-out parts, per-class limits, index takes.

:func:`stratified_split` draws a validation split with the same class
proportions (scikit-learn's ``train_test_split``); the loaders and
:class:`~transferkit.data.splits.DataSplits` use these helpers, so every
path (CIFAR-10, image folders, generated data) splits the same way.
"""

from __future__ import annotations

import numpy as np

from transferkit._validation import check_scalar
from transferkit.data.stream import ImageFiles

SPLIT_METHOD = "sklearn-stratified"
"""Recorded in provenance: splits drawn since scikit-learn draws them (seeds choose other images than before)."""


def stratified_split(labels: np.ndarray, fraction: float, *,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into (keep, held-out) with the same class proportions.

    Each class contributes ``round(fraction * n_class)`` samples to the
    held-out part, at least one where ``fraction > 0`` and the class has two or
    more samples, and never its last one. scikit-learn's
    ``train_test_split(..., stratify=...)`` draws them. Both index arrays are sorted.

    Args:
        labels: 1-D integer labels.
        fraction: Held-out fraction in ``[0, 1)``.
        seed: Seed of the random choice.

    Returns:
        ``(keep_indices, held_out_indices)``.

    Raises:
        ConfigurationError: If ``fraction`` is outside ``[0, 1)``.
    """
    from sklearn.model_selection import train_test_split  # on use: `transferkit info` stays fast

    fraction = _check_fraction(fraction)
    labels = np.asarray(labels)
    classes, sizes = np.unique(labels, return_counts=True)
    held = np.zeros(len(labels), bool)
    # scikit-learn shares the held-out total in proportion to class sizes: a small class
    # beside a large one could get no held-out sample, or lose its last training one. Among
    # equal-sized classes that share is the count above, so each such group is split alone.
    for size in np.unique(sizes).tolist():
        per_class = min(max(round(fraction * size), 1), size - 1) if fraction else 0
        if per_class == 0:  # fraction 0, or a lone sample: scikit-learn refuses both
            continue
        group = np.flatnonzero(np.isin(labels, classes[sizes == size]))
        _, out = train_test_split(group, test_size=per_class * (sizes == size).sum(),
                                  stratify=labels[group], random_state=seed)
        held[out] = True
    return np.flatnonzero(~held), np.flatnonzero(held)


def _check_fraction(fraction: float) -> float:
    return float(check_scalar(fraction, "validation_split", min_val=0, max_val=1,
                              include_max=False))


def limit_indices(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of at most ``per_class`` labels of each class (a seeded choice).

    Example:
        >>> limit_indices(np.array([0, 0, 0, 1]), 2, seed=0).size
        3
    """
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


def _train_val(x: np.ndarray, y: np.ndarray, validation_split: float,
               seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    keep, held = stratified_split(y, validation_split, seed=seed)
    return take(x, keep), y[keep], take(x, held), y[held]


def take(x: np.ndarray | ImageFiles, indices: np.ndarray) -> np.ndarray | ImageFiles:
    """``x[indices]`` (an int index array), which stays undecoded for streamed images."""
    return x.take(np.asarray(indices, np.int64), axis=0)
