"""Everything that differs between Keras backends, in one place.

transferkit runs on TensorFlow (the default, and the fast path on CPU), JAX
and PyTorch (docs/backends.rst). The rest of the library calls only Keras'
public API and the functions here: the distribution scope a model was built
under, the batch split of JAX data parallelism, determinism, Keras' cache
folder, how ``fit`` gets NumPy batches, and hiding TensorFlow's start-up
noise (the machine a result came from is :mod:`transferkit._machine`). Nothing
here imports TensorFlow unless the active backend is TensorFlow, so with
``KERAS_BACKEND=torch`` or ``jax`` the library runs where TensorFlow is not
installed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path


def keras_home() -> Path:
    """Keras' cache folder, resolved as Keras resolves it, without importing Keras.

    ``$KERAS_HOME``, else ``~/.keras`` (``/tmp/.keras`` when home is not
    writable). Once Keras is imported, its own value wins: it read the
    environment at import time.
    """
    keras_config = sys.modules.get("keras.src.backend.config")
    if keras_config is not None:
        return Path(keras_config.keras_home()).expanduser()
    return keras_home_from_environment()


def keras_home_from_environment() -> Path:
    """Keras' cache folder as Keras resolves it at import: ``$KERAS_HOME``, else ``~/.keras``.

    ``/tmp/.keras`` when home is not writable. Unlike :func:`keras_home`, this
    reads the environment now even if Keras is already imported.
    """
    if "KERAS_HOME" in os.environ:
        return Path(os.environ["KERAS_HOME"]).expanduser()
    base = Path.home()
    return (base if os.access(base, os.W_OK) else Path("/tmp")) / ".keras"


def name() -> str:
    """The active Keras backend: ``"tensorflow"``, ``"jax"`` or ``"torch"``."""
    import keras

    return keras.backend.backend()


def configured() -> str:
    """The backend Keras will load, read without importing Keras.

    ``$KERAS_BACKEND``, else the ``"backend"`` of ``keras.json`` in Keras' home
    (``$KERAS_HOME``, else ``~/.keras``), else ``"tensorflow"``, as Keras decides.
    """
    if os.environ.get("KERAS_BACKEND"):
        return os.environ["KERAS_BACKEND"]

    try:
        with open(keras_home_from_environment() / "keras.json", encoding="utf-8") as f:
            return str(json.load(f).get("backend", "tensorflow"))
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def is_tensorflow() -> bool:
    """Whether the active Keras backend is TensorFlow."""
    return name() == "tensorflow"


def distribution_scope(model=None):
    """The scope to build, compile and fit models sharing ``model``'s layers in.

    On TensorFlow: the ``tf.distribute`` strategy the model was built under
    (``model.distribute_strategy``), else the default one. A model made from
    the model's layers (a head, a suffix, a view at another size) takes the
    strategy it is built under, and fits under that one: built outside it,
    its first ``fit`` fails creating the shared optimizer's variables
    (``Need to be inside "with strategy.scope()"``). On JAX a
    ``keras.distribution`` set globally applies by itself, and PyTorch has no
    equivalent: an empty context.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> with distribution_scope(model):
        ...     model.compile(optimizer="adam", loss="mse")
    """
    if not is_tensorflow():
        return contextlib.nullcontext()
    import tensorflow as tf

    strategy = getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()
    return strategy.scope()


PREFETCH_BATCHES = 2


def fit_input(batches):
    """What to hand ``fit`` for a ``keras.utils.PyDataset`` of NumPy ``(x, y)`` batches.

    On TensorFlow: a ``tf.data`` pipeline over it with tf.data's autotuning
    off and two batches prefetched; it calls ``batches.on_epoch_end()`` after
    each pass. Keras' own wrapping prefetches with autotuning on, and with it
    whole epochs ran about 1.7x slower at random (12.1 s or 20.5 s for the
    same 12,800 cached-prefix samples on 2 CPU cores; ``train_on_batch`` on the
    same batches: 11.5 s every time); with this pipeline 9 of 9 epochs took
    11.8-12.3 s. Elsewhere: ``batches`` itself.
    """
    if not is_tensorflow():
        return batches
    import tensorflow as tf

    x, y = batches[0]  # one batch read for the shapes and dtypes
    spec = tuple(tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype)) for a in (x, y))

    def one_pass():
        for index in range(len(batches)):
            yield batches[index]
        batches.on_epoch_end()

    data = tf.data.Dataset.from_generator(one_pass, output_signature=spec)
    data = data.apply(tf.data.experimental.assert_cardinality(len(batches)))
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH_BATCHES).with_options(options)


def refresh_train_function(model) -> None:
    """Make ``model``'s compiled training step see variables assigned outside it.

    TensorFlow and PyTorch read a variable's current value at every step; JAX
    compiles the values of variables that are not the model's or optimizer's
    state into the step (a re-planned learning-rate schedule), so the step is
    rebuilt there.
    """
    if name() == "jax":
        model.make_train_function(force=True)


def data_parallel_replicas() -> int:
    """How many devices each batch is split across under JAX data parallelism; else 1.

    With a ``keras.distribution`` set on JAX (e.g. ``DataParallel``), every
    batch, the last one of each split included, is sharded along the mesh's
    batch axis and must divide evenly. ``tf.distribute`` handles uneven
    batches itself, and PyTorch has no such distribution: 1.
    """
    if name() != "jax":
        return 1
    import keras

    dist = keras.distribution.distribution()
    mesh = getattr(dist, "device_mesh", None)
    axis = getattr(dist, "batch_dim_name", None)
    if mesh is None or axis not in mesh.axis_names:
        return 1
    return int(mesh.shape[list(mesh.axis_names).index(axis)])


def check_data_parallel(batch_size: int, split_sizes) -> None:
    """Refuse batch and split sizes that JAX data parallelism cannot shard evenly.

    Raises:
        ConfigurationError: Naming the device count and the sizes to change.
    """
    replicas = data_parallel_replicas()
    if replicas == 1:
        return
    bad = [n for n in (batch_size, *split_sizes) if n % replicas]
    if bad:
        from transferkit.errors import ConfigurationError

        raise ConfigurationError(
            f"keras.distribution shards every batch across {replicas} devices, so the batch "
            f"size and each split's size must be multiples of {replicas}; got batch_size="
            f"{batch_size} and splits of {list(split_sizes)} images. Trim the splits "
            f"(e.g. DataSplits.limit) and pick a batch size that divides evenly."
        )


def check_replica_batches(model, batch_size: int, split_sizes) -> None:
    """Refuse first batches that ``model``'s ``tf.distribute`` strategy cannot split evenly.

    Keras (3.15) builds a model under a strategy from the first batch of each
    ``fit`` and ``evaluate``, averaged across the replicas, which fails when
    the replicas' shares differ in size (TensorFlow's ``AddN must have the
    same size and shape``). That first batch is ``batch_size`` images, or the
    whole split where it is smaller. Later batches may be uneven. Nothing to
    check on one replica, or on JAX and PyTorch.

    Args:
        model: The model, built under the strategy it trains in.
        batch_size: Images per batch.
        split_sizes: Images in each split that ``fit`` or ``evaluate`` reads
            (training and validation; the test split is only predicted).

    Raises:
        ConfigurationError: Naming the replica count and the sizes to change.
    """
    if not is_tensorflow():
        return
    strategy = getattr(model, "distribute_strategy", None)
    replicas = int(getattr(strategy, "num_replicas_in_sync", 1))
    firsts = [min(batch_size, n) for n in split_sizes if n]
    if replicas > 1 and any(n % replicas for n in firsts):
        from transferkit.errors import ConfigurationError

        raise ConfigurationError(
            f"The model's tf.distribute strategy splits every batch across {replicas} replicas, "
            f"and Keras needs the first batch of each split to split evenly; got batch_size="
            f"{batch_size} and training/validation splits of {list(split_sizes)} images. Pick a "
            f"batch size that is a multiple of {replicas}, and splits that hold at least a batch "
            f"(or a multiple of {replicas} images).")


def enable_determinism() -> None:
    """Ask the backend for deterministic kernels (it matters on GPU).

    TensorFlow: ``enable_op_determinism``. PyTorch:
    ``use_deterministic_algorithms`` (warn-only, since some ops have no
    deterministic kernel). JAX on CPU and GPU is deterministic for the same
    program and seed already.
    """
    backend = name()
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    elif backend == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)


def quiet_tensorflow_import(*, show: bool = False) -> None:
    """Import TensorFlow and find its devices with its start-up lines hidden.

    TensorFlow writes several lines to the process's stderr while it loads
    (oneDNN notices, "Could not find cuda drivers", a ``cuInit`` ERROR on
    machines without a GPU), some before its log level applies. They go to a
    temporary file here; if the import fails, the file is printed. Does
    nothing on other backends, or when TensorFlow is already imported.
    """
    if show or "tensorflow" in sys.modules:
        return
    if configured() != "tensorflow":
        return
    with native_stderr_hidden():
        import tensorflow as tf

        tf.config.list_physical_devices()  # the CUDA probe logs here
        tf.get_logger().setLevel("ERROR")  # retracing notices are noise for CLI users


@contextlib.contextmanager
def native_stderr_hidden(*, show: bool = False, keep: Callable[[str], str] | None = None):
    """Send what C++ code writes to the process's stderr to a temporary file for a block.

    TensorFlow's converters and interpreters print notices there directly
    (``fully_quantize: 0, ...``, ``Created TensorFlow Lite XNNPACK delegate``),
    past Python's ``sys.stderr`` and past its log level. If the block fails,
    what was hidden is printed, so a crash still shows its cause. ``show``:
    hide nothing. ``keep``: what of the hidden text to write after the block
    (None: nothing).
    """
    if show or sys.stderr is None:
        yield
        return
    import tempfile

    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode(errors="replace")
            if failed or keep is not None:
                sys.stderr.write(text if failed else keep(text))


STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called are written to STDERR",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "This TensorFlow binary is optimized to use available CPU instructions",
)
"""TensorFlow's start-up lines on every import, whatever its log level: they say nothing."""
_NO_DRIVER, _CUINIT = "Could not find cuda drivers on your machine", "failed call to cuInit"


@contextlib.contextmanager
def hidden_tensorflow_startup():
    """Keep TensorFlow's start-up lines off stderr if the block imports TensorFlow.

    Only the lines of :data:`STARTUP_NOISE` are dropped, and the ``cuInit``
    ERROR where TensorFlow also said the machine has no CUDA driver (so no GPU
    was expected); everything else written to stderr meanwhile is written
    after the block. For library use: nothing changes where TensorFlow is
    imported already or another backend is configured.
    """
    if "tensorflow" in sys.modules or configured() != "tensorflow":
        yield
        return
    with native_stderr_hidden(keep=without_startup_noise):
        yield
        if "tensorflow" in sys.modules:  # the CUDA probe writes its lines now, not later
            sys.modules["tensorflow"].config.list_physical_devices()


def without_startup_noise(text: str) -> str:
    """``text`` less TensorFlow's start-up lines (see :func:`hidden_tensorflow_startup`)."""
    no_gpu = _NO_DRIVER in text
    return "".join(line for line in text.splitlines(keepends=True)
                   if not any(noise in line for noise in STARTUP_NOISE)
                   and not (no_gpu and _CUINIT in line))


class _NoRetracingNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def drop_retracing_notices() -> None:
    """Keep TensorFlow's "N out of the last M calls ... triggered tf.function retracing" quiet.

    transferkit predicts with several models and chunk sizes on purpose
    (features, prefixes, the head's check at chance, the test split); each new
    shape is one trace, which TensorFlow reports as a warning meant for code
    that retraces by mistake. Only that message is dropped, once per process.
    """
    tf_logger = logging.getLogger("tensorflow")
    if not any(isinstance(f, _NoRetracingNotices) for f in tf_logger.filters):
        tf_logger.addFilter(_NoRetracingNotices())
