"""``--out`` folders: a new run never mixes into an old one, and only transferkit's outputs are cleared.

Checked before TensorFlow is imported and before any image is decoded, so a
refusal costs under a second; the folder is cleared only once the inputs have
loaded, so a run that fails on its inputs leaves the previous one intact.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from transferkit.cli._config import RUN_CONFIG_FILE, is_run_config
from transferkit.errors import ConfigurationError
from transferkit.runs.guard import LOCK_FILE, check_free

#: A folder holding one of these at its top is a transferkit output (a run or a command's --out).
MARKERS = ("run.json", "metrics.json")
#: ... and so is one whose stage folders hold one of these (a run interrupted before its end).
STAGE_MARKERS = ("run.json", "history.csv", "backup")


def check_out_dir(out: Path, *, overwrite: bool, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse an ``--out`` that would mix with, or delete, files it should not.

    Args:
        out: The output folder asked for.
        overwrite: Whether ``--overwrite`` was given.
        inputs: Paths the command reads (images, data): never inside a folder it clears.

    Raises:
        RunDirectoryBusyError: Another live job holds the lock of ``out`` or of a stage in it.
        ConfigurationError: ``out`` is a file; it is not empty and ``overwrite`` is
            False; or ``overwrite`` would delete a folder that is not a transferkit
            output, or one holding the command's own inputs.
    """
    if not out.exists():
        return
    if not out.is_dir():
        raise ConfigurationError(f"--out {out} is a file, not a folder.")
    for folder in (out, *(p for p in out.iterdir() if p.is_dir())):  # --out and its stages
        check_free(folder)  # another live job writes there: refused whatever the flags
    if not any(p.is_file() and p.name != LOCK_FILE for p in out.rglob("*")):  # empty (a stale
        return  # lock left by a killed run counts as nothing)
    if not overwrite:
        if is_run_config(out / RUN_CONFIG_FILE) and not (out / "metrics.json").is_file():
            raise ConfigurationError(f"--out {out} holds a run that did not finish: pass "
                                     "--resume to continue it, --overwrite to replace it, or "
                                     "choose another --out.")
        raise ConfigurationError(f"--out {out} is not empty: pass --overwrite to replace the "
                                 "run in it, or choose another --out.")
    if not is_transferkit_output(out):
        raise ConfigurationError(
            f"--out {out} is not empty and holds no transferkit run ({' or '.join(MARKERS)}, "
            "or a stage folder with its history): "
            "--overwrite clears only transferkit's own outputs; choose another --out.")
    resolved = out.resolve()
    for path in (*inputs, Path.cwd(), Path.home()):
        if path.expanduser().resolve().is_relative_to(resolved):
            raise ConfigurationError(f"--out {out} holds {path}: --overwrite would delete it; "
                                     "choose another --out.")


def is_transferkit_output(folder: Path) -> bool:
    """Whether ``folder`` holds a transferkit run: a ``run.json`` or ``metrics.json`` at its
    top, the ``config.toml`` that ``train`` writes first, or, where a run was interrupted, a
    stage folder with its history or backup."""
    if any((folder / name).is_file() for name in MARKERS) or is_run_config(folder / RUN_CONFIG_FILE):
        return True
    return any((stage / name).exists() for stage in folder.iterdir() if stage.is_dir()
               for name in STAGE_MARKERS)


def clear_out_dir(out: Path) -> None:
    """Empty ``out`` of a previous transferkit run, so no stale stage stays beside the new files.

    The folder itself is kept. A folder that does not look like a transferkit
    output is left alone (:func:`check_out_dir` refused it already; this is the
    last guard before deleting).
    """
    if not out.is_dir() or not is_transferkit_output(out):
        return
    for entry in out.iterdir():
        if entry.name == LOCK_FILE:
            continue  # this process's lock (check_out_dir refused another live one)
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
