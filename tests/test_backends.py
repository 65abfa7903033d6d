"""The same code on TensorFlow, JAX and PyTorch (docs/backends.rst).

The whole suite runs under each backend in CI (``KERAS_BACKEND=torch`` and
``jax``, in environments without TensorFlow). The tests here check what only
differs between backends: that nothing imports TensorFlow on the others, that
augmentation works on each, and multi-device data parallelism on JAX.
"""

import importlib.util
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import BACKEND, ROOT, requires_tensorflow

from transferkit import _backend, _machine
from transferkit.data.augment import AugmentedBatches
from transferkit.data.splits import augmentation
from transferkit.errors import ConfigurationError


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _other_backend() -> str | None:
    """The backend to run the no-TensorFlow check under: this one, or an installed other."""
    if BACKEND != "tensorflow":
        return BACKEND
    return next((b for b in ("torch", "jax") if _installed(b)), None)


def _run(script: str, env: dict, timeout: int = 300) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout


# The library end to end: frozen head (cached features), fine-tuning, augmented training
# from scratch, evaluate, save, load, report and slides, an image folder. CI runs it
# where TensorFlow is not installed (.venv-torch, .venv-jax); where it is, the check
# is that nothing imported it.
NO_TENSORFLOW_SCRIPT = """
    import sys
    import tempfile
    from pathlib import Path

    import keras
    import numpy as np

    import transferkit as tk
    from transferkit.reporting.report import write_report

    out = Path(tempfile.mkdtemp())
    keras.utils.set_random_seed(0)
    data = tk.make_synthetic_dataset(3, per_class=24, image_size=16, test_per_class=6, seed=1)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(x)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_b")(x)
    backbone = keras.Model(inp, x, name="tiny_backbone")
    model = tk.build_transfer_model(backbone, data.num_classes, input_shape=data.image_shape,
                                    image_size=32, head=(8,))
    head = tk.train(model, data, epochs=2, batch_size=16, run_dir=out / "head", verbose=0)
    assert head.config["cached_features"]
    ft = tk.fine_tune(model, data, epochs=2, batch_size=16, run_dir=out / "ft", verbose=0)
    cnn = tk.build_baseline_cnn(data, filters=(8,), head=(8,))
    scratch = tk.train(cnn, data, epochs=2, batch_size=16, augment=True, verbose=0)
    evaluation = tk.evaluate(ft.model, data)
    reloaded = tk.load_model(out / "ft" / "model.keras")
    np.testing.assert_allclose(reloaded.predict(data.x_test, verbose=0), evaluation.probabilities,
                               atol=1e-5)
    loaded = tk.Run.load(out / "ft")
    write_report([head, loaded, scratch], out / "report.html", data=data)
    write_report([head, loaded, scratch], out / "slides.html", data=data, slides=True)
    from PIL import Image  # image folders decode with Pillow

    for c, name in enumerate(("cat", "dog")):
        (out / "photos" / name).mkdir(parents=True)
        for k in range(5):
            Image.fromarray(np.full((20, 24, 3), 80 * c + k, np.uint8)).save(
                out / "photos" / name / f"{k}.jpg")
    photos = tk.load_image_folder(out / "photos", image_size=16)
    assert photos.image_shape == (16, 16, 3) and photos.class_names == ("cat", "dog")
    print("backend", keras.backend.backend())
    print("tensorflow imported:", "tensorflow" in sys.modules)
"""


@pytest.mark.skipif(_other_backend() is None,
                    reason="neither torch nor jax is installed to run Keras on without TensorFlow")
def test_train_fine_tune_evaluate_save_load_report_never_import_tensorflow():
    backend = _other_backend()
    env = {**os.environ, "KERAS_BACKEND": backend}
    out = _run(NO_TENSORFLOW_SCRIPT, env)
    assert f"backend {backend}" in out
    assert "tensorflow imported: False" in out


def test_augmentation_runs_outside_the_model_on_every_backend():
    batch = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype(np.uint8)
    out = keras.ops.convert_to_numpy(augmentation(seed=1)(batch, training=True))
    assert out.shape == batch.shape and not np.allclose(out, batch)
    assert out.min() >= 0 and out.max() <= 255
    # transferkit's own augmentation: NumPy batches, uint8 in and out
    x, y = AugmentedBatches(batch, np.arange(4) % 2, batch_size=4, seed=0)[0]
    assert x.dtype == np.uint8 and x.shape == batch.shape and y.dtype == np.int32


def test_backend_reports_itself():
    found = _machine.versions()
    assert found["backend"] == BACKEND == _backend.name()
    assert found[BACKEND] != "not installed"
    assert "CPU cores" in _machine.describe_devices()
    with _backend.distribution_scope():
        pass
    assert _backend.data_parallel_replicas() == 1
    _backend.check_data_parallel(7, [3, 0, 5])  # nothing to divide on one device


DATA_PARALLEL_SCRIPT = """
    import keras
    import numpy as np

    devices = keras.distribution.list_devices()
    assert devices == ["cpu:0", "cpu:1"], devices
    keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))

    import jax

    import transferkit as tk
    from transferkit import _backend
    from transferkit.errors import ConfigurationError

    shards = []
    try:  # count the devices each batch lands on (Keras' own JAX data-sharding hook)
        from keras.src.backend.jax import distribution_lib

        shard = distribution_lib.distribute_data_input

        def spy(*args, **kwargs):
            out = shard(*args, **kwargs)
            shards.extend(len(a.sharding.device_set) for a in jax.tree_util.tree_leaves(out))
            return out

        distribution_lib.distribute_data_input = spy
    except (ImportError, AttributeError):
        pass
    assert _backend.data_parallel_replicas() == 2
    data = tk.make_synthetic_dataset(3, per_class=36, image_size=16, test_per_class=8, seed=1)
    model = tk.build_baseline_cnn(data, filters=(8, 16), head=(16,))
    try:
        tk.train(model, data, epochs=1, batch_size=15, verbose=0)
        raise AssertionError("an odd batch size was accepted")
    except ConfigurationError as exc:
        assert "multiples of 2" in str(exc), exc
    run = tk.train(model, data, epochs=8, batch_size=16, seed=0, verbose=0)
    print("accuracy", run.evaluation.accuracy)
    print("weights on", sorted({len(w.value.sharding.device_set) for w in model.weights}))
    print("batches on", sorted(set(shards)) or "unknown")
"""


@pytest.mark.skipif(not _installed("jax"), reason="jax is not installed")
def test_jax_data_parallel_trains_on_two_cpu_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    env = {**os.environ, "KERAS_BACKEND": "jax", "XLA_FLAGS": flags.strip()}
    out = _run(DATA_PARALLEL_SCRIPT, env)
    accuracy = float(out.split("accuracy ")[1].split()[0])
    assert accuracy > 0.6, out  # chance is 1/3
    assert "weights on [2]" in out, out  # every variable replicated on both devices
    assert "batches on [2]" in out or "batches on unknown" in out, out


def test_check_data_parallel_names_the_fix(monkeypatch):
    monkeypatch.setattr(_backend, "data_parallel_replicas", lambda: 2)
    _backend.check_data_parallel(16, [96, 12, 0])
    with pytest.raises(ConfigurationError, match="multiples of 2"):
        _backend.check_data_parallel(16, [95, 12, 24])


@requires_tensorflow
def test_check_replica_batches_names_the_fix():
    from types import SimpleNamespace

    two = SimpleNamespace(distribute_strategy=SimpleNamespace(num_replicas_in_sync=2))
    _backend.check_replica_batches(two, 16, [95, 12])  # first batches of 16 and 12; the rest may be uneven
    _backend.check_replica_batches(two, 16, [96, 0])  # no validation split
    _backend.check_replica_batches(keras.Sequential(), 15, [95, 7])  # one replica: nothing to split
    with pytest.raises(ConfigurationError, match="multiple of 2"):
        _backend.check_replica_batches(two, 15, [96, 12])
    with pytest.raises(ConfigurationError, match="multiple of 2"):
        _backend.check_replica_batches(two, 16, [96, 7])  # the whole validation split is its first batch


def test_configured_backend_is_read_as_keras_reads_it(tmp_path, monkeypatch):
    # quiet_tensorflow_import and `transferkit info` decide without importing Keras
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert _backend.configured() == "tensorflow"
    (tmp_path / "keras.json").write_text('{"backend": "jax", "floatx": "float32"}')
    assert _backend.configured() == "jax"
    monkeypatch.setenv("KERAS_BACKEND", "torch")
    assert _backend.configured() == "torch"


class _Counting(keras.utils.PyDataset):
    """Three fixed batches; counts the ends of epochs."""

    def __init__(self):
        super().__init__()
        self.ends = 0

    def __len__(self):
        return 3

    def __getitem__(self, i):
        return np.full((2, 4), i, np.float32), np.array([i, i], np.int32)

    def on_epoch_end(self):
        self.ends += 1


def test_fit_input_streams_the_same_batches_and_ends_each_epoch():
    batches = _Counting()
    given = _backend.fit_input(batches)
    if BACKEND != "tensorflow":
        assert given is batches  # Keras' own PyDataset path
        return
    import tensorflow as tf

    assert int(given.cardinality()) == 3  # fit knows the steps per epoch
    for epoch in (1, 2):
        seen = [(x.numpy(), y.numpy()) for x, y in given]
        assert [int(x[0, 0]) for x, _ in seen] == [0, 1, 2] and seen[1][1].dtype == np.int32
        assert batches.ends == epoch
    assert not given.options().autotune.enabled
    assert isinstance(given, tf.data.Dataset)


def test_tensorflow_retracing_notices_are_dropped_and_its_other_warnings_kept(caplog):
    import logging

    import transferkit.training  # noqa: F401  (installs the filter)

    log = logging.getLogger("tensorflow")
    with caplog.at_level(logging.WARNING, logger="tensorflow"):
        log.warning("5 out of the last 9 calls to <function f at 0x1> triggered tf.function "
                    "retracing. Tracing is expensive ...")
        log.warning("something else")
    assert [r.getMessage() for r in caplog.records] == ["something else"]


def test_tensorflow_start_up_lines_are_dropped_and_other_lines_kept():
    text = ("WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
            "I0000 00:00:1.0 1 port.cc:153] oneDNN custom operations are on. You may see ...\n"
            "I0000 00:00:1.0 1 cudart_stub.cc:31] Could not find cuda drivers on your machine, "
            "GPU will not be used.\n"
            "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error\n"
            "a warning of the user's own\n")
    assert _backend.without_startup_noise(text) == "a warning of the user's own\n"
    with_driver = "E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: INTERNAL\n"
    assert _backend.without_startup_noise(with_driver) == with_driver  # a GPU was expected


@pytest.mark.slow
@pytest.mark.skipif(BACKEND != "tensorflow", reason="TensorFlow's own start-up lines")
def test_library_use_prints_no_tensorflow_start_up_lines():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    script = """
        import os, sys
        import transferkit as tk
        os.write(2, b"before\\n")
        tk.BackbonePreprocessing  # its module imports Keras, and so TensorFlow
        assert "tensorflow" in sys.modules
        from transferkit import _backend
        assert _backend.without_startup_noise("x\\n") == "x\\n"
        print("after", file=sys.stderr)
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == ["before", "after"]


def test_importing_transferkit_picks_tensorflows_bfc_cpu_allocator_unless_the_user_chose():
    # The default CPU allocator returns each batch's buffers to the kernel and faults them
    # in again every step (benchmarks/cpu_time.py); the choice must precede TensorFlow.
    script = "import os, sys, transferkit; print(os.environ['TF_CPU_ALLOCATOR_USE_BFC'], " \
             "'tensorflow' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if k != "TF_CPU_ALLOCATOR_USE_BFC"}
    for given, expected in ((None, "true False"), ("false", "false False")):
        proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                              env=env if given is None else {**env, "TF_CPU_ALLOCATOR_USE_BFC": given},
                              text=True, timeout=120)
        assert proc.stdout.strip() == expected, proc.stderr
