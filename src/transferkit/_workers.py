"""Who this process is in a multi-worker job: the worker count, its index, whether it is chief.

transferkit does not start or coordinate workers: users (or ``transferkit train
--distribute``) create the engine Keras documents, ``tf.distribute.MultiWorkerMirroredStrategy``
on TensorFlow (configured by the ``TF_CONFIG`` environment variable) or a
``keras.distribution`` after ``keras.distribution.initialize`` on JAX, and this
module reads what they set up. :func:`read_tf_config` checks ``TF_CONFIG``
before TensorFlow reads it, so a mistake there is one clear
:class:`~transferkit.errors.ConfigurationError` instead of a hang or a
TensorFlow traceback. Nothing here imports TensorFlow or JAX unless they are
imported already or the model asks for them.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from transferkit.errors import ConfigurationError

ENV = "TF_CONFIG"


@dataclass(frozen=True)
class Role:
    """This process's place in a job: ``workers`` processes, this one at ``index``.

    Example:
        >>> Role(workers=2, index=1, is_chief=False).describe()
        'worker 1 of 2'
    """

    workers: int = 1
    index: int = 0
    is_chief: bool = True
    task_type: str = "worker"

    @property
    def multi_worker(self) -> bool:
        """Whether the job has more than one process."""
        return self.workers > 1

    def describe(self) -> str:
        """``"worker 1 of 2"`` (``"chief ..."`` for a chief task)."""
        return f"{self.task_type} {self.index} of {self.workers}"


SINGLE = Role()
"""The role of a process that trains alone."""


def read_tf_config(environ: Mapping[str, str] | None = None) -> Role | None:
    """Parse and check ``TF_CONFIG``: this task's :class:`Role`, or None when it is unset.

    The chief is the ``chief`` task if the cluster names one, else worker 0,
    as ``MultiWorkerMirroredStrategy`` decides.

    Args:
        environ: The environment to read (default ``os.environ``).

    Raises:
        ConfigurationError: Malformed JSON, no ``cluster`` or ``task``, an
            address listed twice, or a task index or type the cluster lacks.

    Example:
        >>> env = {"TF_CONFIG": '{"cluster": {"worker": ["a:1", "b:1"]},'
        ...                     ' "task": {"type": "worker", "index": 1}}'}
        >>> read_tf_config(env)
        Role(workers=2, index=1, is_chief=False, task_type='worker')
    """
    text = (os.environ if environ is None else environ).get(ENV, "").strip()
    if not text:
        return None
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(f"{ENV} is not valid JSON ({exc}): {text[:200]!r}.") from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise ConfigurationError(f'{ENV} needs a "cluster" object, e.g. {{"cluster": {{"worker": '
                                 f'["host1:12345", "host2:12345"]}}, "task": {{"type": "worker", '
                                 f'"index": 0}}}}; got {text[:200]!r}.')
    cluster, task = config["cluster"], config.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigurationError(f'{ENV} needs a "task" with its "type" and "index" (which '
                                 f'process this is), e.g. {{"type": "worker", "index": 0}}.')
    tasks = {kind: _addresses(kind, value) for kind, value in cluster.items()}
    _check_unique(tasks)
    kind, index = task["type"], task["index"]
    if kind not in tasks:
        raise ConfigurationError(f'{ENV} task type {kind!r} is not in its cluster '
                                 f'({", ".join(tasks) or "empty"}).')
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(tasks[kind]):
        raise ConfigurationError(f"{ENV} task index {index!r} is out of range: the cluster lists "
                                 f"{len(tasks[kind])} {kind} address(es), indices 0 to "
                                 f"{len(tasks[kind]) - 1}.")
    workers = len(tasks.get("chief", [])) + len(tasks.get("worker", []))
    chief = kind == "chief" or ("chief" not in tasks and kind == "worker" and index == 0)
    return Role(workers=workers, index=index, is_chief=chief, task_type=kind)


def _addresses(kind: str, value) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(a, str) and a for a in value):
        raise ConfigurationError(f'{ENV} cluster "{kind}" must be a list of "host:port" '
                                 f"addresses; got {value!r}.")
    return value


def _check_unique(tasks: dict[str, list[str]]) -> None:
    seen: dict[str, str] = {}
    for kind, addresses in tasks.items():
        for i, address in enumerate(addresses):
            where = f"{kind} {i}"
            if address in seen:
                raise ConfigurationError(
                    f"{ENV} lists {address} twice ({seen[address]} and {where}): each process "
                    "needs its own host:port, or the job waits forever for the missing one.")
            seen[address] = where


def current_role(model=None) -> Role:
    """This process's :class:`Role` in the job ``model`` trains in (a lone process: ``SINGLE``).

    TensorFlow: ``model``'s ``tf.distribute`` strategy, when it is a
    ``MultiWorkerMirroredStrategy`` in multi-worker mode. JAX: the processes
    ``keras.distribution.initialize`` joined (``jax.process_count()``),
    process 0 being the chief. PyTorch: always alone.
    """
    strategy = getattr(model, "distribute_strategy", None) if "tensorflow" in sys.modules else None
    if strategy is not None and is_multi_worker_strategy(strategy):
        resolver = strategy.cluster_resolver
        spec = resolver.cluster_spec().as_dict()
        workers = len(spec.get("chief", [])) + len(spec.get("worker", []))
        kind, index = resolver.task_type, int(resolver.task_id)
        chief = kind == "chief" or ("chief" not in spec and index == 0)
        return Role(workers=workers, index=index, is_chief=chief, task_type=kind)
    if "jax" in sys.modules and _keras_backend() == "jax":
        import jax

        if jax.process_count() > 1:
            return Role(workers=jax.process_count(), index=jax.process_index(),
                        is_chief=jax.process_index() == 0, task_type="process")
    return SINGLE


def is_multi_worker_strategy(strategy) -> bool:
    """Whether ``strategy`` is a ``MultiWorkerMirroredStrategy`` joining several processes."""
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and bool(strategy.extended._in_multi_worker_mode()))


def _keras_backend() -> str:
    keras = sys.modules.get("keras")
    return keras.backend.backend() if keras is not None else ""


def check_global_batch(batch_size: int, replicas: int, role: Role) -> None:
    """Refuse a global batch the job's replicas cannot share evenly.

    In a multi-worker job ``batch_size`` is global: each of the ``replicas``
    (all workers' devices together) gets ``batch_size / replicas`` images a step.

    Raises:
        ConfigurationError: Naming the workers, replicas and batch sizes that work.

    Example:
        >>> check_global_batch(64, 2, Role(workers=2, index=0, is_chief=True))
    """
    if not role.multi_worker or batch_size % replicas == 0:
        return
    near = [n for n in (batch_size - batch_size % replicas, batch_size - batch_size % replicas
                        + replicas) if n > 0]
    raise ConfigurationError(
        f"The batch size is global in a multi-worker job: {batch_size} images a step cannot be "
        f"shared evenly by {replicas} replicas on {role.workers} workers. Pick a multiple of "
        f"{replicas} (e.g. {' or '.join(map(str, near))}).")


_PRIVATE: contextvars.ContextVar[bool] = contextvars.ContextVar("private_run_dirs",
                                                                default=False)


@contextlib.contextmanager
def private_run_dirs():
    """Within the block, run folders are this worker's own already (the CLI's temporary ``--out``
    of a non-chief worker): :func:`writable_run_dir` hands them back as they are."""
    token = _PRIVATE.set(True)
    try:
        yield
    finally:
        _PRIVATE.reset(token)


@contextlib.contextmanager
def writable_run_dir(run_dir, role: Role, *, resume: bool):
    """The folder this worker writes its run to, for the block.

    The chief: ``run_dir`` itself. Any other worker: a temporary folder it
    deletes afterwards, so only the chief writes durable files. Where the job
    resumes, the temporary folder starts from a copy of the chief's backup and
    history: every worker restores the same epoch, and saves a checkpoint at
    the same epochs as the chief (saving runs collectives that all workers
    must join). None stays None.
    """
    if run_dir is None or role.is_chief or _PRIVATE.get():
        yield run_dir
        return
    from transferkit.runs.layout import BACKUP_DIR, HISTORY_FILE

    with tempfile.TemporaryDirectory(prefix=f"transferkit-worker{role.index}-") as temp:
        chief, mine = Path(run_dir), Path(temp)
        if resume and (chief / BACKUP_DIR).is_dir():
            shutil.copytree(chief / BACKUP_DIR, mine / BACKUP_DIR)
            if (chief / HISTORY_FILE).is_file():
                shutil.copy2(chief / HISTORY_FILE, mine / HISTORY_FILE)
        yield mine
