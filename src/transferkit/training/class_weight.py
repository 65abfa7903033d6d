"""Class weights: ``class_weight=`` of ``train``, ``fine_tune`` and ``train_from_scratch``.

Real image folders are rarely balanced, and a model trained on them favours
the large classes. Weighting each training image's loss by its class
(``class_weight="balanced"``: the inverse of the class's frequency, as
scikit-learn's ``sklearn.utils.class_weight.compute_class_weight``
computes it) makes every class count as much in the loss as the others.

:func:`check_class_weight` checks the argument's form when the options are
made (no data needed); :func:`resolve_class_weight` turns it, once per call,
into the ``{class index: weight}`` dict Keras' ``fit(class_weight=...)``
takes, which every fast path hands to ``fit`` (arrays, cached features,
cached activations and augmented batches alike).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from transferkit._validation import check_scalar
from transferkit.errors import ConfigurationError, unknown_name

BALANCED = "balanced"
"""Weights inversely proportional to the class frequencies, the one named choice."""


def check_class_weight(class_weight) -> None:
    """Check the form of ``class_weight`` (the keys are checked against the data later).

    Args:
        class_weight: None, ``"balanced"`` or a ``{class name or index: weight}``
            mapping of finite weights >= 0, at least one of them above 0.

    Raises:
        ConfigurationError: For any other value, a negative, infinite or NaN
            weight, or weights that are all 0.

    Example:
        >>> check_class_weight({"cat": 2.0, 1: 0.5})
        >>> check_class_weight({"cat": -1})
        Traceback (most recent call last):
        ...
        transferkit.errors.ConfigurationError: class_weight['cat'] must be a number >= 0, got -1.
    """
    if class_weight is None or (isinstance(class_weight, str) and class_weight == BALANCED):
        return
    if not isinstance(class_weight, Mapping):
        raise ConfigurationError(
            f"class_weight must be 'balanced', a {{class name or index: weight}} dict or None, "
            f"got {class_weight!r}.")
    for key, weight in class_weight.items():
        name = f"class_weight[{key!r}]"
        check_scalar(weight, name, min_val=0)
        if math.isinf(weight):
            raise ConfigurationError(f"{name} must be a finite number >= 0, got {weight!r}.")
    if class_weight and not any(weight > 0 for weight in class_weight.values()):
        raise ConfigurationError("class_weight gives every class it names weight 0: nothing would "
                                 "train. Give the classes to favour a weight above 0.")


def resolve_class_weight(class_weight, y_train, class_names: Sequence[str]
                         ) -> dict[int, float] | None:
    """``class_weight`` as ``{class index: weight}`` for every class, or None for no weights.

    Args:
        class_weight: None, ``"balanced"`` (``n_samples / (n_classes *
            count)`` per class present in ``y_train``, from scikit-learn's
            ``compute_class_weight``) or ``{class name or index: weight}``;
            classes not named weigh 1, as in Keras and scikit-learn.
        y_train: The training labels.
        class_names: The class names, in label order.

    Returns:
        A weight per class index (a class without training images weighs 1),
        or None where ``class_weight`` is None.

    Raises:
        ConfigurationError: For a bad form (see :func:`check_class_weight`), an
            index that is not a class, or a class named twice.
        UnknownNameError: For a name that is not a class (close matches listed).

    Example:
        >>> resolve_class_weight("balanced", [0, 0, 0, 1], ["cat", "dog"])
        {0: 0.6666666666666666, 1: 2.0}
        >>> resolve_class_weight({"dog": 3}, [0, 0, 0, 1], ["cat", "dog"])
        {0: 1.0, 1: 3.0}
    """
    check_class_weight(class_weight)
    if class_weight is None:
        return None
    names = [str(n) for n in class_names]
    weights = dict.fromkeys(range(len(names)), 1.0)
    if isinstance(class_weight, str):  # "balanced"
        from sklearn.utils.class_weight import compute_class_weight

        y = np.asarray(y_train, np.int64)
        present = np.unique(y)
        balanced = compute_class_weight(BALANCED, classes=present, y=y)
        weights.update({int(c): float(w) for c, w in zip(present, balanced)})
        return weights
    named: dict[int, object] = {}
    for key, weight in class_weight.items():
        index = _class_index(key, names)
        if index in named:
            raise ConfigurationError(f"class_weight names class {names[index]!r} twice "
                                     f"(as {named[index]!r} and {key!r}); give it once.")
        named[index] = key
        weights[index] = float(weight)
    return weights


def _class_index(key, names: list[str]) -> int:
    if isinstance(key, str):
        if key not in names:
            raise unknown_name("class", key, names)
        return names.index(key)
    if isinstance(key, numbers.Integral) and not isinstance(key, bool):
        if not 0 <= key < len(names):
            raise ConfigurationError(
                f"class_weight key {key!r} is not a class index: the data has {len(names)} "
                f"classes, 0 to {len(names) - 1} ({', '.join(names[:5])}"
                f"{', ...' if len(names) > 5 else ''}).")
        return int(key)
    raise ConfigurationError(f"class_weight keys are class names or indices, got {key!r}.")


def describe_class_weight(weights: dict[int, float], class_names: Sequence[str]) -> str:
    """The lightest and heaviest class, for the log line: ``"0.67 (cat) to 2.00 (dog)"``.

    Example:
        >>> describe_class_weight({0: 0.6666, 1: 2.0}, ["cat", "dog"])
        '0.67 (cat) to 2.00 (dog)'
    """
    low = min(weights, key=weights.__getitem__)
    high = max(weights, key=weights.__getitem__)
    return f"{weights[low]:.2f} ({class_names[low]}) to {weights[high]:.2f} ({class_names[high]})"


def class_weight_record(class_weight, weights: dict[int, float] | None,
                        class_names: Sequence[str]) -> dict | None:
    """What a run records: how the weights were given and each class's weight, by name.

    Example:
        >>> class_weight_record("balanced", {0: 0.5, 1: 2.0}, ["cat", "dog"])
        {'given': 'balanced', 'weights': {'cat': 0.5, 'dog': 2.0}}
    """
    if weights is None:
        return None
    given = class_weight if isinstance(class_weight, str) else "dict"
    return {"given": given,
            "weights": {str(class_names[i]): round(w, 6) for i, w in sorted(weights.items())}}
