"""How much progress to print, and how: labelled lines, sizes in the unit that shows them.

A bar on a terminal, a line per epoch (or per extraction) in a log file. A
progress line says what it processes (``Extracting features (train split):
48/48 images - 3s - 55ms/image``), unlike Keras' bare ``48/48 - 3s``.
"""

from __future__ import annotations

import os
import sys
import time
from typing import TextIO

from transferkit._text import plural


def progress_verbose(verbose: int | str) -> int:
    """Keras' ``verbose`` for ``fit``: ``"auto"`` is a progress bar on a terminal and one
    line per epoch otherwise (no control characters in redirected logs); the CLI's
    ``--quiet`` silences it."""
    if verbose != "auto":
        return verbose
    if os.environ.get("TRANSFERKIT_VERBOSITY") == "quiet":
        return 0
    return 1 if sys.stdout.isatty() else 2


def format_size(nbytes: int) -> str:
    """A memory size as people read it: bytes, KB under a megabyte, MB, GB (1,024-based).

    Example:
        >>> format_size(300_000), format_size(5 * 2**20), format_size(3 * 2**30)
        ('293 KB', '5 MB', '3.0 GB')
    """
    if nbytes < 2**10:
        return plural(nbytes, "byte")
    if nbytes < 2**20:
        return f"{nbytes / 2**10:,.0f} KB"
    if nbytes < 2**30:
        return f"{nbytes / 2**20:,.0f} MB"
    return f"{nbytes / 2**30:,.1f} GB"


def progress_line(label: str, done: int, total: int, elapsed: float, unit: str = "image") -> str:
    """``label: done/total units - elapsed - time per unit``, as Keras times its steps.

    Example:
        >>> progress_line("Extracting features (train split)", 48, 48, 2.64)
        'Extracting features (train split): 48/48 images - 3s - 55ms/image'
    """
    count = f"{done:,}/{plural(total, unit)}"
    each = elapsed / max(done, 1)
    if each >= 1 or each == 0:
        rate = f"{each:.0f}s"
    elif each >= 1e-3:
        rate = f"{each * 1e3:.0f}ms"
    else:
        rate = f"{each * 1e6:.0f}us"
    return f"{label}: {count} - {elapsed:.0f}s - {rate}/{unit}"


class Progress:
    """A labelled progress display of ``total`` units.

    Args:
        label: What is processed, e.g. ``"Extracting features (train split)"``.
        total: Units in all.
        unit: Singular name of a unit.
        verbose: 0 prints nothing, 1 redraws one line (a terminal), 2 prints
            one line when done (a log file), as Keras' ``verbose``.
        file: Where to print (default: ``sys.stdout`` at each update).
    """

    def __init__(self, label: str, total: int, unit: str = "image", *, verbose: int = 1,
                 file: TextIO | None = None) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.verbose, self.file = verbose, file
        self.started = time.perf_counter()
        self._drawn = 0  # length of the line on screen, to blank a longer one

    def update(self, done: int) -> None:
        """Show that ``done`` units are done (the last update has ``done == total``)."""
        final = done >= self.total
        if not self.verbose or (self.verbose != 1 and not final):
            return
        line = progress_line(self.label, done, self.total,
                             time.perf_counter() - self.started, self.unit)
        out = self.file or sys.stdout
        if self.verbose == 1:
            out.write("\r" + line.ljust(self._drawn) + ("\n" if final else ""))
            self._drawn = len(line)
        else:
            out.write(line + "\n")
        out.flush()
