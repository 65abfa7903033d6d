"""The run folder: every file a run writes, preparing it, resuming it, reading its history.

A run folder (``train(..., run_dir=...)``, ``transferkit train --out``) holds::

    run.json          the Run record (transferkit.runs.record)
    model.keras       the trained model
    predictions.npz   test-split labels, predictions and probabilities
    history.csv       one row per epoch (Keras' CSVLogger)
    best.keras        the best epoch's model (ModelCheckpoint); a hard link to
                      model.keras when the last epoch was the best
    backup/           Keras' BackupAndRestore state while a run is unfinished
                      (removed once it finishes: only an interrupted run needs it)
    .lock             while a run writes the folder: its host and pid
                      (transferkit.runs.guard)

Everything that names these files, or decides whether a folder may be
written, lives here.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from pathlib import Path

from transferkit._atomic import remove_stale_temp_files
from transferkit.errors import ConfigurationError, RunDirectoryExistsError
from transferkit.runs.guard import LOCK_FILE, check_free

logger = logging.getLogger("transferkit")

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "predictions.npz"
HISTORY_FILE = "history.csv"
BEST_MODEL_FILE = "best.keras"
BACKUP_DIR = "backup"


def backup_dir(run_path: Path | None, phase: int | None = None) -> Path | None:
    """The ``BackupAndRestore`` folder of a run (one sub-folder per progressive phase)."""
    if run_path is None:
        return None
    return run_path / BACKUP_DIR / (f"phase{phase}" if phase is not None else "")


def prepare_run_dir(run_dir, *, overwrite: bool, resume: bool) -> Path | None:
    """Make ``run_dir`` ready for a run: new, replaced (``overwrite``) or continued (``resume``).

    A folder that already holds a run is refused unless one of the two is set;
    resuming removes temporaries left by an interrupted save and cuts a
    half-written history row. A folder another live job holds the lock of
    (:mod:`transferkit.runs.guard`) is refused whatever is asked, and
    overwriting keeps this process's own lock file.

    Raises:
        ConfigurationError: If both ``overwrite`` and ``resume`` are set.
        RunDirectoryExistsError: If the folder holds a run and neither is set.
        RunDirectoryBusyError: If another job is writing the folder.
    """
    if run_dir is None:
        return None
    if overwrite and resume:
        raise ConfigurationError("Pass overwrite=True or resume=True, not both.")
    path = Path(run_dir)
    check_free(path)
    markers = [path / RUN_FILE, path / HISTORY_FILE, path / BACKUP_DIR]
    if any(m.exists() for m in markers):
        if overwrite:
            _clear(path)
        elif not resume:
            raise RunDirectoryExistsError(
                f"{path} already holds a run. Pass overwrite=True to replace it or "
                "resume=True to continue it."
            )
        else:
            for stale in remove_stale_temp_files(path):
                logger.info("Removed %s, left by an interrupted save", stale)
            repair_history(path / HISTORY_FILE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clear(path: Path) -> None:
    """Delete everything in ``path`` but its lock file (held by this process: it was checked)."""
    for entry in path.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def read_history(path: str | os.PathLike) -> dict[str, list[float]]:
    """Read a ``CSVLogger`` history, keeping the last row of any repeated epoch.

    A run killed between logging an epoch and backing it up repeats that epoch
    on resume; the repeat is the row that counts.

    Args:
        path: The ``history.csv`` file.

    Returns:
        ``{metric: [value per epoch]}`` in epoch order (empty if the file is missing).
    """
    path = Path(path)
    if not path.exists():
        return {}
    repair_history(path)
    rows: dict[int, dict[str, str]] = {}
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("epoch", "").strip().isdigit():
                rows[int(row["epoch"])] = row
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch" and key is not None:
                history.setdefault(key, []).append(_to_float(value))
    # CSVLogger pads runs without validation with "NA" val_ columns: drop them.
    return {k: v for k, v in history.items() if not all(math.isnan(x) for x in v)}


def repair_history(path: str | os.PathLike) -> None:
    """Cut a row left half-written by a killed process, so appending starts on a fresh line."""
    path = Path(path)
    if not path.exists():
        return
    content = path.read_bytes()
    if content and not content.endswith(b"\n"):
        with path.open("r+b") as f:
            f.truncate(content.rfind(b"\n") + 1)


def _to_float(value: str | None) -> float:
    try:
        return float(value) if value not in (None, "") else math.nan
    except ValueError:
        return math.nan
