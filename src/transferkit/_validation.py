"""One argument check for numbers, in the spirit of scikit-learn's ``check_scalar``.

Every public function that takes a count, a rate or a fraction checks it here,
so the messages read the same everywhere and name the argument, the allowed
range and the value given.
"""

from __future__ import annotations

import numbers

from transferkit.errors import ConfigurationError

_KINDS = {int: (numbers.Integral, "an int"), float: (numbers.Real, "a number")}


def check_scalar(value, name: str, kind: type = float, *, min_val: float | None = None,
                 max_val: float | None = None, include_min: bool = True,
                 include_max: bool = True):
    """Return ``value`` if it is a ``kind`` within the bounds, else raise ConfigurationError.

    Booleans are refused as numbers (``True`` is not an epoch count).

    Args:
        value: The argument as given.
        name: Its name, for the message.
        kind: ``int`` or ``float`` (ints are accepted as floats).
        min_val: Lower bound, or None.
        max_val: Upper bound, or None.
        include_min: Whether ``min_val`` itself is allowed.
        include_max: Whether ``max_val`` itself is allowed.

    Returns:
        ``value``, unchanged.

    Raises:
        ConfigurationError: Naming the argument, the allowed range and the value.

    Example:
        >>> check_scalar(3, "epochs", int, min_val=1)
        3
        >>> check_scalar(1.0, "dropout", min_val=0, max_val=1, include_max=False)
        Traceback (most recent call last):
        ...
        transferkit.errors.ConfigurationError: dropout must be a number in [0, 1), got 1.0.
    """
    types, what = _KINDS[kind]
    low = "" if min_val is None else ("[" if include_min else "(") + f"{min_val:g}"
    high = "" if max_val is None else f"{max_val:g}" + ("]" if include_max else ")")
    if low and high:
        bounds = f" in {low}, {high}"
    elif low:
        bounds = f" {'>=' if include_min else '>'} {min_val:g}"
    elif high:
        bounds = f" {'<=' if include_max else '<'} {max_val:g}"
    else:
        bounds = ""
    ok = isinstance(value, types) and not isinstance(value, bool)
    if ok and min_val is not None:
        ok = value >= min_val if include_min else value > min_val
    if ok and max_val is not None:
        ok = value <= max_val if include_max else value < max_val
    if not ok:
        raise ConfigurationError(f"{name} must be {what}{bounds}, got {value!r}.")
    return value
