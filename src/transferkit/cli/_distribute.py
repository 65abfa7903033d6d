"""``train`` and ``run`` as one multi-worker job: ``TF_CONFIG`` naming 2+ workers, or ``--distribute``.

Each machine runs the same command with its own ``TF_CONFIG``
(docs/scaling.rst). The command builds its models under a
``tf.distribute.MultiWorkerMirroredStrategy``; the library then shares each
global batch among the workers and lets only the chief write
(:mod:`transferkit._workers`). Here, the command's own outputs follow the same
rule: the chief writes ``--out``; every other worker prints one line naming
its role, writes its copy of the outputs to a temporary folder it deletes at
the end, and stays quiet otherwise.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from transferkit import _backend
from transferkit._workers import ENV, private_run_dirs, read_tf_config
from transferkit.errors import ConfigurationError
from transferkit.runs.guard import LOCK_FILE


def check(args) -> None:
    """Read and check ``TF_CONFIG`` before TensorFlow loads; set ``args.role`` (None: one process).

    Raises:
        ConfigurationError: A malformed ``TF_CONFIG``; ``--distribute`` without
            one; a multi-worker job with ``--budget``, or on a backend other than
            TensorFlow.
    """
    role = read_tf_config()
    # run NAME takes it among the experiment's options, parsed later
    args.distribute = getattr(args, "distribute", False) or "--distribute" in getattr(
        args, "options", ())
    if args.distribute and role is None:
        raise ConfigurationError(
            f"--distribute needs {ENV} naming the job's workers and this one, e.g. {ENV}="
            '\'{"cluster": {"worker": ["host1:12345", "host2:12345"]}, "task": {"type": '
            '"worker", "index": 0}}\' on the first machine and "index": 1 on the second '
            "(docs/scaling.rst).")
    args.role = role if role is not None and (role.multi_worker or args.distribute) else None
    budget = getattr(args, "budget", None) is not None or "--budget" in getattr(args, "options", ())
    if args.role is not None and budget:
        raise ConfigurationError("--budget is not supported in a multi-worker job (each worker "
                                 "would time its own steps and could stop at another epoch): "
                                 "give --epochs instead.")
    if args.role is not None and _backend.configured() != "tensorflow":
        raise ConfigurationError(
            f"{ENV} names a multi-worker job, which the command line runs on TensorFlow "
            f"(KERAS_BACKEND={_backend.configured()}). On JAX, call the Python API after "
            "keras.distribution.initialize (docs/scaling.rst), or unset TF_CONFIG.")


@contextlib.contextmanager
def job(args):
    """Run the command in the job's strategy; a non-chief worker quietly, into a temporary folder."""
    role = getattr(args, "role", None)
    if role is None:
        yield
        return
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    if role.is_chief:
        logging.getLogger("transferkit").info("Chief (%s) of a %d-worker job.", role.describe(),
                                              role.workers)
        with strategy.scope():
            yield
        return
    print(f"transferkit: {role.describe()} of a multi-worker job: training quietly; the chief "
          "writes the outputs.", file=sys.stderr, flush=True)
    with (tempfile.TemporaryDirectory(prefix=f"transferkit-worker{role.index}-") as temp,
          open(os.devnull, "w") as null, contextlib.redirect_stdout(null), _quiet_logging(),
          warnings.catch_warnings(), private_run_dirs(), strategy.scope()):
        warnings.simplefilter("ignore")  # the chief gives the advice (a small test split, ...)
        args.worker_out = Path(temp)
        yield


def out_for(args, out: str | os.PathLike) -> Path:
    """Where this process writes the command's ``out``: itself, or a non-chief's temporary copy.

    A resumed job's non-chief starts from a copy of the chief's folder, so it
    skips the same finished stages and restores the same backups.
    """
    temp = getattr(args, "worker_out", None)
    if temp is None:
        return Path(out)
    mine = temp / "out"
    if getattr(args, "resume", False) and Path(out).is_dir() and not mine.exists():
        shutil.copytree(out, mine, ignore=shutil.ignore_patterns(LOCK_FILE))
    return mine


@contextlib.contextmanager
def _quiet_logging():
    logger = logging.getLogger("transferkit")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)
