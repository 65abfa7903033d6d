"""Exception types raised by transferkit.

Every error a user can cause by passing bad input derives from
:class:`TransferkitError`, so ``except transferkit.TransferkitError`` catches
them all, and each subclass also derives from the built-in exception a Python
user would expect (``ValueError``, ``FileNotFoundError``, ...).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class TransferkitError(Exception):
    """Base class of every error transferkit raises on purpose."""


class DataError(TransferkitError, ValueError):
    """The data given is malformed: wrong shape, dtype, labels, or empty."""


class DataNotFoundError(TransferkitError, FileNotFoundError):
    """A dataset path does not exist or no dataset could be located."""


class CorruptDataError(TransferkitError, ValueError):
    """An archive or image file could not be read."""


class DataChangedError(DataError):
    """An image file changed or disappeared between listing a folder and reading it (streaming)."""


class UnknownNameError(TransferkitError, KeyError):
    """A name (backbone, class, layer) is not known; lists close matches."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class WeightsNotFoundError(TransferkitError, FileNotFoundError):
    """Pretrained weights could neither be found locally nor downloaded."""


class ConfigurationError(TransferkitError, ValueError):
    """An argument value is out of range or inconsistent with another."""


class BudgetTooShortError(ConfigurationError):
    """A time budget cannot buy one epoch on this machine; the message gives the minimum."""


class MissingDependencyError(TransferkitError, ImportError):
    """An optional package a feature needs is not installed; the message gives the pip command."""


class RunDirectoryExistsError(TransferkitError, FileExistsError):
    """A run directory already holds a run and neither overwrite nor resume was asked."""


class RunDirectoryBusyError(TransferkitError, FileExistsError):
    """Another live process holds the run directory's lock: it is writing a run there."""


def unknown_name(kind: str, name: object, known: Iterable[str]) -> UnknownNameError:
    """Build an :class:`UnknownNameError` that lists close matches and valid names.

    Args:
        kind: What was looked up, e.g. ``"backbone"`` or ``"layer"``.
        name: The name that was not found.
        known: Every valid name.

    Returns:
        The error, ready to raise.
    """
    known = list(known)
    close = difflib.get_close_matches(str(name), known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    listing = ", ".join(known) if len(known) <= 20 else ", ".join(known[:20]) + ", ..."
    kinds = kind + ("es" if kind.endswith(("s", "sh", "x", "z")) else "s")  # classes, not classs
    return UnknownNameError(f"Unknown {kind} {name!r}.{hint} Valid {kinds}: {listing}.")
