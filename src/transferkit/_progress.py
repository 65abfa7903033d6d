"""How much progress to print: a bar on a terminal, a line per epoch in a log file."""

from __future__ import annotations

import os
import sys


def progress_verbose(verbose: int | str) -> int:
    """Keras' ``verbose`` for ``fit``: ``"auto"`` is a progress bar on a terminal and one
    line per epoch otherwise (no control characters in redirected logs); the CLI's
    ``--quiet`` silences it."""
    if verbose != "auto":
        return verbose
    if os.environ.get("TRANSFERKIT_VERBOSITY") == "quiet":
        return 0
    return 1 if sys.stdout.isatty() else 2
