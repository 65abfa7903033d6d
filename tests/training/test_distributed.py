"""Every training path on several devices: tf.distribute on TensorFlow, keras.distribution on JAX.

``run_training`` builds, compiles and fits what each fast path makes from the
model (the cached head, the cached-prefix suffix, the progressive views) in the
model's distribution scope (``_backend.distribution_scope``). Two tests run every
path in one fresh process per backend, where two CPU devices can still be
configured: two logical CPUs under ``MirroredStrategy`` (slow suite), two XLA host
devices under ``DataParallel`` (the fast suite, where it runs on JAX). The fast
tests catch the scoping bugs in-process: a one-device ``MirroredStrategy`` refuses
optimizer variables made outside it.
"""

import importlib.util
import json
import math
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT, requires_jax_suite, requires_tensorflow
from harness import SMALL_PREFIX, small_transfer_model

from transferkit.data.synthetic import make_synthetic_dataset
from transferkit.models.freezing import unfreeze_last
from transferkit.training.recipes import fine_tune

# Two classes of 16 px images: 32 training, 8 validation and 8 test images, batches of 8,
# so every batch splits evenly across two devices and JAX compiles one step per shape.
# The backbone is a small CNN the model upscales 16 -> 32 px into (progressive views
# need a model that resizes inside); the frozen prefix ends at block1_pool.
SCRIPT = """
    import contextlib, json, os
    import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        scope = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope

        def copies(v):  # a MirroredVariable holds one copy per replica
            mirrored = isinstance(v.value, tf.distribute.DistributedValues)
            return len(v.value.values) if mirrored else 1
    else:
        devices = keras.distribution.list_devices()
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        scope = contextlib.nullcontext

        def copies(v):
            return len(v.value.sharding.device_set)
    import numpy as np
    import transferkit as tk
    from transferkit.errors import ConfigurationError
    from transferkit.training import head_first

    head_first.HEAD_FIRST_STEPS = 1  # its fewest epochs (3): what counts is where the head trains
    data = tk.make_synthetic_dataset(2, per_class=20, image_size=16, test_per_class=4,
                                     validation_split=0.2, seed=1)

    def transfer():
        with scope():
            cnn = tk.build_baseline_cnn(2, input_shape=(32, 32, 3), filters=(4, 8), head=())
            return tk.build_transfer_model(cnn.backbone, data, image_size=32, head=())

    def scratch():
        with scope():
            return tk.build_baseline_cnn(data, filters=(4,), head=())

    def kernels(m):
        layers = [m.get_layer("predictions")] + [
            layer for layer in m.backbone.layers if layer.name in ("block1_conv1", "block2_conv1")]
        return {layer.name: keras.ops.convert_to_numpy(layer.kernel).copy() for layer in layers}

    KW = dict(epochs=1, batch_size=8, seed=0, verbose=0)
    CUT = dict(unfreeze="block1_pool")
    PATHS = {
        "train_frozen": (transfer, lambda m: tk.train(m, data, **KW)),
        "fine_tune": (transfer, lambda m: tk.fine_tune(m, data, **CUT, **KW)),
        "fine_tune_streamed": (transfer, lambda m: tk.fine_tune(
            m, data, **CUT, cache_prefix=False, progressive=False, head_first=False, **KW)),
        "fine_tune_progressive": (transfer, lambda m: tk.fine_tune(
            m, data, unfreeze="all", progressive=[(24, 1), (32, 1)], head_first=False,
            **(KW | {"epochs": 2}))),
        "fine_tune_budget": (transfer, lambda m: tk.fine_tune(
            m, data, **CUT, budget=600, head_first=False, **KW)),
        "train_from_scratch": (scratch, lambda m: tk.train_from_scratch(m, data, **KW)),
    }
    for name, (build, run_path) in PATHS.items():
        model = build()
        before = kernels(model)
        run = run_path(model)
        after = kernels(model)
        recipe = run.config.get("recipe") or {}
        print(json.dumps({
            "path": name, "loss": run.history["loss"],
            "changed": sorted(n for n in before if not np.array_equal(before[n], after[n])),
            "cached_features": run.config.get("cached_features"),
            "cached_prefix": recipe.get("cached_prefix"), "phases": recipe.get("phases"),
            "head_first": (recipe.get("head_first") or {}).get("epochs"),
            "budget": (run.config.get("budget") or {}).get("steps"),
            "copies": sorted({copies(v) for v in [*model.weights, *model.optimizer.variables]}),
        }), flush=True)
    try:
        tk.train(transfer(), data, epochs=1, batch_size=7, verbose=0)
    except ConfigurationError as exc:
        print(json.dumps({"path": "odd_batch", "refused": str(exc)}))
"""

FROZEN_PREFIX = ["block2_conv1", "predictions"]  # block1 stays frozen; the rest trains
EXPECTED = {  # path: (what its run records, the kernels that changed)
    "train_frozen": ({"cached_features": True}, ["predictions"]),
    "fine_tune": ({"cached_prefix": "block1_pool", "head_first": 3}, FROZEN_PREFIX),
    "fine_tune_streamed": ({"cached_prefix": None, "phases": None}, FROZEN_PREFIX),
    "fine_tune_progressive": ({"phases": [[24, 1], [32, 2]]},
                              ["block1_conv1", "block2_conv1", "predictions"]),
    "fine_tune_budget": ({"cached_prefix": "block1_pool"}, FROZEN_PREFIX),
    "train_from_scratch": ({}, ["block1_conv1", "predictions"]),
}


def _run_every_path(backend: str, **env) -> dict[str, dict]:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(SCRIPT)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return {row.pop("path"): row for row in rows}


def _assert_every_path_trained_on_two_devices(result: dict[str, dict]) -> None:
    assert set(result) == {*EXPECTED, "odd_batch"}, result
    for path, (records, changed) in EXPECTED.items():
        row = result[path]
        assert row["loss"] and all(math.isfinite(v) for v in row["loss"]), (path, row)
        assert row["changed"] == changed, (path, row)  # trained, and only what should
        assert row["copies"] == [2], (path, row)  # every weight and optimizer variable on both
        for key, value in records.items():
            assert row[key] == value, (path, key, row)
    assert result["fine_tune_budget"]["budget"] >= 4  # the calibration's fit steps, at least
    assert "of 2" in result["odd_batch"]["refused"]  # batch_size=7 refused, naming the fix


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="tensorflow is not installed")
def test_every_path_trains_under_mirrored_strategy_on_two_logical_cpus():
    _assert_every_path_trained_on_two_devices(_run_every_path("tensorflow"))


# In the fast suite where the suite runs on JAX (CI's JAX run, whose environment has no
# TensorFlow for the slow suite to run in): there it runs on every change.
@requires_jax_suite
def test_every_path_trains_under_jax_data_parallel_on_two_cpu_devices():
    flags = os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"
    _assert_every_path_trained_on_two_devices(_run_every_path("jax", XLA_FLAGS=flags.strip()))


def _mirrored_transfer_model():
    """A tiny transfer model built under a one-device MirroredStrategy, and its data."""
    import tensorflow as tf

    data = make_synthetic_dataset(2, per_class=20, image_size=16, test_per_class=4,
                                  validation_split=0.2, seed=1)
    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        return small_transfer_model(data, filters=(4,)), data


def _all_mirrored(variables) -> bool:
    import tensorflow as tf

    return all(isinstance(v.value, tf.distribute.DistributedValues) for v in variables)


@requires_tensorflow
def test_cached_prefix_suffix_trains_in_the_model_strategy():
    # The suffix was built outside the strategy: its fit failed creating the shared
    # optimizer's variables ("Need to be inside strategy.scope()").
    model, data = _mirrored_transfer_model()
    run = fine_tune(model, data, unfreeze=SMALL_PREFIX, head_first=False, epochs=1,
                    batch_size=8, verbose=0)
    assert run.config["recipe"]["cached_prefix"] == SMALL_PREFIX
    assert _all_mirrored(model.optimizer.variables)


@requires_tensorflow
def test_recompile_after_unfreezing_keeps_the_model_strategy():
    # Recompiled outside the strategy, the fresh optimizer's variables were plain ones.
    model, data = _mirrored_transfer_model()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    unfreeze_last(model, 3)  # recompiles the compiled model
    model.fit(data.x_train, data.y_train, batch_size=32, epochs=1, verbose=0)
    assert model.optimizer.built and _all_mirrored(model.optimizer.variables)
