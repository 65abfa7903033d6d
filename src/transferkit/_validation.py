"""Argument checks: numbers (scikit-learn's ``check_scalar`` with transferkit's errors), durations.

Every public function that takes a count, a rate or a fraction checks it here,
so the messages read the same everywhere and name the argument, the allowed
range and the value given.
"""

from __future__ import annotations

import math
import numbers
import re

from transferkit.errors import ConfigurationError

_KINDS = {int: (numbers.Integral, "an int"), float: (numbers.Real, "a number")}


def check_scalar(value, name: str, kind: type = float, *, min_val: float | None = None,
                 max_val: float | None = None, include_min: bool = True,
                 include_max: bool = True):
    """Return ``value`` if it is a ``kind`` within the bounds, else raise ConfigurationError.

    The check is :func:`sklearn.utils.check_scalar`; this wrapper adds what
    transferkit wants on top: booleans are refused as numbers (``True`` is not
    an epoch count), NaN is refused where bounds are given, and the error is a
    :class:`~transferkit.errors.ConfigurationError` whose message names the
    whole allowed range (scikit-learn's names only the bound that was crossed).

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
    # Imported on use: scikit-learn takes about a second to import, and this module is on
    # the path of commands that must start fast (transferkit info, --help).
    from sklearn.utils import check_scalar as sklearn_check_scalar

    types, what = _KINDS[kind]
    bounds = _boundaries(min_val, max_val, include_min, include_max)
    try:
        sklearn_check_scalar(value, name, types, min_val=min_val, max_val=max_val,
                             include_boundaries=bounds)
        # Refused on top of scikit-learn: a bool is an int to Python, and NaN, which
        # compares False with everything, passes any bound.
        bounded = min_val is not None or max_val is not None
        if isinstance(value, bool) or (bounded and value != value):
            raise ValueError(f"{name} == {value!r}")
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"{name} must be {what}{_describe(min_val, max_val, include_min, include_max)}, "
            f"got {value!r}."
        ) from exc
    return value


def _boundaries(min_val, max_val, include_min: bool, include_max: bool) -> str:
    """scikit-learn's ``include_boundaries`` for the two flags.

    scikit-learn refuses "left" without a ``min_val`` and "right" without a
    ``max_val``, so a missing bound takes the other bound's flag (it has no effect).
    """
    if min_val is None:
        include_min = include_max
    if max_val is None:
        include_max = include_min
    return {(True, True): "both", (True, False): "left", (False, True): "right",
            (False, False): "neither"}[bool(include_min), bool(include_max)]


def _describe(min_val, max_val, include_min: bool, include_max: bool) -> str:
    """The allowed range in words: ``" in [0, 1)"``, ``" >= 1"``, ``" < 4"`` or ``""``."""
    if min_val is not None and max_val is not None:
        low, high = "[" if include_min else "(", "]" if include_max else ")"
        return f" in {low}{min_val:g}, {max_val:g}{high}"
    if min_val is not None:
        return f" {'>=' if include_min else '>'} {min_val:g}"
    if max_val is not None:
        return f" {'<=' if include_max else '<'} {max_val:g}"
    return ""


_UNITS = {"": 1, "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1, "m": 60, "min": 60,
          "mins": 60, "minute": 60, "minutes": 60, "h": 3600, "hr": 3600, "hour": 3600,
          "hours": 3600}
_PART = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-z]*)", re.IGNORECASE)


def parse_duration(value, name: str = "budget") -> float:
    """Seconds from a duration given as seconds or as a string (``"10min"``).

    Args:
        value: A number of seconds, or a string such as ``"600"``, ``"90s"``,
            ``"10m"``, ``"10min"``, ``"1.5h"`` or ``"1h30m"``.
        name: The argument's name, for the message.

    Returns:
        The duration in seconds.

    Raises:
        ConfigurationError: For zero, a negative number or an unreadable string.

    Example:
        >>> parse_duration("10min"), parse_duration("1h30m"), parse_duration(45)
        (600.0, 5400.0, 45.0)
        >>> parse_duration("0s")
        Traceback (most recent call last):
        ...
        transferkit.errors.ConfigurationError: budget must be more than 0 seconds, got '0s'.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ConfigurationError(f"{name} must be seconds or a duration such as '10min', "
                                 f"got {value!r}.")
    seconds = float(value) if not isinstance(value, str) else _parse_text(value, name)
    if not seconds > 0 or math.isinf(seconds):  # also refuses NaN
        raise ConfigurationError(f"{name} must be more than 0 seconds, got {value!r}.")
    return seconds


def _parse_text(text: str, name: str) -> float:
    seconds, position = 0.0, 0
    stripped = text.strip()
    while position < len(stripped):
        match = _PART.match(stripped, position)
        if match is None or match.group(2).lower() not in _UNITS or match.end() == position:
            raise ConfigurationError(
                f"{name} {text!r} is not a duration: give seconds (600) or a number with a "
                "unit, s, m (or min) or h ('90s', '10m', '1h30m').")
        seconds += float(match.group(1)) * _UNITS[match.group(2).lower()]
        position = match.end()
    if not stripped:
        raise ConfigurationError(f"{name} is empty: give seconds (600) or a duration ('10min').")
    return seconds
