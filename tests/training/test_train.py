import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from conftest import ROOT
from harness import small_transfer_model

from transferkit.errors import ConfigurationError, DataError, RunDirectoryExistsError
from transferkit.models.anatomy import find_backbone
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.runs.layout import read_history
from transferkit.runs.record import Run
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train


def _cnn(data, **kw):
    return build_baseline_cnn(data.num_classes, input_shape=data.image_shape, filters=(8, 16), head=(16,), **kw)


def _pretrained_features(tiny):
    """A small backbone trained on the tiny task, so frozen transfer has real features."""
    source = _cnn(tiny)
    train(source, tiny, epochs=6, seed=0, verbose=0)
    return source.get_layer("features")


def test_train_learns_and_records_everything(tiny):
    run = train(_cnn(tiny), tiny, epochs=8, batch_size=16, seed=0, verbose=0)
    assert run.evaluation.accuracy > 0.6  # chance is 1/3 on held-out test images
    assert run.epochs_run == 8 and len(run.history["val_accuracy"]) == 8
    assert set(run.timings) >= {"fit", "evaluate", "total"}
    cfg = run.config
    assert cfg["epochs"] == 8 and cfg["batch_size"] == 16 and cfg["seed"] == 0
    assert cfg["params"]["trainable"] > 0 and cfg["versions"]["keras"] == keras.__version__
    assert cfg["backbone"]["name"] == "features" and not cfg["cached_features"]
    json.dumps(run.to_dict())


def test_cached_training_matches_uncached_and_model_predicts_the_same(tiny):
    features = _pretrained_features(tiny)
    runs = {}
    for cache in (True, False):
        model = build_transfer_model(features, tiny.num_classes, input_shape=tiny.image_shape, head=(16,))
        runs[cache] = train(model, tiny, epochs=25, batch_size=16, seed=1, cache_features=cache, verbose=0)
    assert runs[True].config["cached_features"] and "features" in runs[True].timings
    assert not runs[False].config["cached_features"]
    # 24 test images, and each Keras backend draws its own random numbers: agree within 6 images
    assert abs(runs[True].evaluation.accuracy - runs[False].evaluation.accuracy) <= 0.25
    assert runs[True].evaluation.accuracy > 0.6
    # the full model now holds the head trained on cached features
    probs = runs[True].model.predict(tiny.x_test, verbose=0)
    np.testing.assert_allclose(probs, runs[True].evaluation.probabilities, atol=1e-5)


def test_cache_features_true_is_refused_where_invalid(tiny):
    with pytest.raises(ConfigurationError, match="augmentation"):
        train(_cnn(tiny), tiny, epochs=1, cache_features=True, augment=True, verbose=0)
    with pytest.raises(ConfigurationError, match="trainable"):
        train(_cnn(tiny), tiny, epochs=1, cache_features=True, verbose=0)


def test_train_rejects_mismatched_data(tiny):
    with pytest.raises(DataError, match="outputs 5 classes"):
        train(build_baseline_cnn(5, input_shape=tiny.image_shape), tiny, epochs=1, verbose=0)
    with pytest.raises(DataError, match="shape"):
        train(build_baseline_cnn(3, input_shape=(32, 32, 3)), tiny, epochs=1, verbose=0)
    with pytest.raises(ConfigurationError, match="epochs"):
        train(_cnn(tiny), tiny, epochs=0)


def test_fine_tune_changes_exactly_the_unfrozen_weights(tiny):
    model = small_transfer_model(tiny)  # the subject is the count, not the backbone
    train(model, tiny, epochs=1, seed=0, verbose=0)
    base = find_backbone(model)
    before = {w.path: w.numpy().copy() for w in base.weights}
    last = 7  # block2_bn1, its ReLU, block2_conv2, its BatchNorm, ReLU, pooling, dropout
    run = fine_tune(model, tiny, unfreeze=last, lr=1e-2, epochs=1, batch_size=16, seed=0, verbose=0)
    layers = [x for x in base.layers if not isinstance(x, keras.layers.InputLayer)]
    unfrozen = {w.path for x in layers[-last:] if not isinstance(x, keras.layers.BatchNormalization)
                for w in x.weights}
    assert unfrozen, f"the last {last} layers hold trainable weights"
    for w in base.weights:
        changed = not np.array_equal(before[w.path], w.numpy())
        assert changed == (w.path in unfrozen), w.path
    assert run.config["augment"] and not run.config["cached_features"]
    assert run.config["backbone"]["trainable_layers"] == 1  # block2_conv2 (its BN stays frozen)


def test_run_save_load_roundtrip(tiny, tmp_path):
    run = train(_cnn(tiny), tiny, epochs=2, seed=0, run_dir=tmp_path / "r", verbose=0)
    loaded = Run.load(tmp_path / "r")
    assert loaded.to_dict() == json.loads(json.dumps(run.to_dict()))
    assert loaded.evaluation == run.evaluation
    np.testing.assert_allclose(loaded.model.predict(tiny.x_test, verbose=0),
                               run.model.predict(tiny.x_test, verbose=0), atol=1e-6)
    for name in ("history.csv", "best.keras", "model.keras", "run.json", "predictions.npz"):
        assert (tmp_path / "r" / name).stat().st_size > 0


def test_existing_run_dir_needs_overwrite_or_resume(tiny, tmp_path):
    train(_cnn(tiny), tiny, epochs=1, run_dir=tmp_path, verbose=0)
    with pytest.raises(RunDirectoryExistsError, match="overwrite=True"):
        train(_cnn(tiny), tiny, epochs=1, run_dir=tmp_path, verbose=0)
    run = train(_cnn(tiny), tiny, epochs=2, run_dir=tmp_path, overwrite=True, verbose=0)
    assert run.epochs_run == 2


class _Interrupt(keras.callbacks.Callback):
    """Interrupts as epoch 2 starts: epochs 0 and 1 are complete and backed up."""

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == 2:
            raise KeyboardInterrupt


def test_interrupted_run_resumes_from_its_backup(tiny, tmp_path):
    with pytest.raises(KeyboardInterrupt):
        train(_cnn(tiny), tiny, epochs=4, seed=0, run_dir=tmp_path, callbacks=[_Interrupt()], verbose=0)
    assert (tmp_path / "backup").exists()
    started = []
    probe = keras.callbacks.LambdaCallback(on_epoch_begin=lambda e, logs: started.append(e))
    run = train(_cnn(tiny), tiny, epochs=4, seed=0, run_dir=tmp_path, resume=True,
                callbacks=[probe], verbose=0)
    assert started == [2, 3]  # continued after the last completed epoch
    assert run.epochs_run == 4 and len(run.history["loss"]) == 4
    assert keras.saving.load_model(tmp_path / "best.keras") is not None


def test_same_seed_same_results_different_seed_differs(tiny):
    def seeded_run(seed):
        keras.utils.set_random_seed(seed)  # weight initialisation happens at build time
        return train(_cnn(tiny), tiny, epochs=2, seed=seed, verbose=0)

    a, b, c = seeded_run(3), seeded_run(3), seeded_run(4)
    assert a.history == b.history
    np.testing.assert_array_equal(a.evaluation.probabilities, b.evaluation.probabilities)
    assert a.history != c.history


def test_no_validation_split_falls_back_to_training_metric(tiny, tmp_path):
    from transferkit.data.splits import DataSplits

    d = DataSplits(tiny.x_train, tiny.y_train, tiny.x_val[:0], tiny.y_val[:0], tiny.x_test,
                   tiny.y_test, tiny.class_names)
    run = train(_cnn(d), d, epochs=2, patience=1, run_dir=tmp_path, verbose=0)
    assert "val_accuracy" not in run.history and (tmp_path / "best.keras").exists()


def test_mixed_precision_keeps_float32_output(tiny):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = _cnn(tiny)
        run = train(model, tiny, epochs=1, verbose=0)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("head_dense_1").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"
    assert np.isfinite(run.history["loss"]).all()


@pytest.mark.slow
def test_mirrored_strategy_on_two_logical_cpus(tmp_path):
    script = textwrap.dedent("""
        import os, json
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from transferkit import build_baseline_cnn, make_deterministic, make_synthetic_dataset, train
        data = make_synthetic_dataset(3, per_class=60, image_size=16, seed=1)
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(8, 16), head=(16,))
        run = train(model, data, epochs=12, batch_size=32, seed=0, verbose=0)
        print(json.dumps({"replicas": strategy.num_replicas_in_sync,
                          "model_strategy": type(model.distribute_strategy).__name__,
                          "loss": run.history["loss"], "accuracy": run.history["accuracy"]}))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2 and result["model_strategy"] == "MirroredStrategy"
    # Training-mode metrics: held-out accuracy after ~20 steps mostly measures how far
    # BatchNorm's moving averages have caught up, not whether replicas learn together.
    assert result["loss"][-1] < 0.5 * result["loss"][0]
    # Training accuracy under dropout swings by epoch (0.65-0.9 seen at the end on CI
    # runs): the best of the last three epochs, well above chance (1/3).
    assert max(result["accuracy"][-3:]) > 0.6


# Real data: the CNN from scratch against transfer and fine-tuning is in
# tests/training/test_fine_tune.py (real_runs: one subset, one head for all of them).


# --------------------------------------------------------------------------- SIGKILL and resume

_CHILD = r'''
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras
from transferkit import build_baseline_cnn, make_deterministic, make_synthetic_dataset, train

run_dir, hang_epoch, log = sys.argv[1], int(sys.argv[2]), sys.argv[3]

class Probe(keras.callbacks.Callback):
    """Logs each epoch start; blocks mid-epoch `hang_epoch` until the test kills it."""

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        with open(log, "a") as f:
            f.write(f"{epoch}\n")

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == hang_epoch and batch == 2:
            open(log + ".hanging", "w").close()
            time.sleep(600)

data = make_synthetic_dataset(3, per_class=60, image_size=16, seed=1)
make_deterministic(int(os.environ.get("SEED", "0")))
model = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(8, 16))
train(model, data, epochs=6, batch_size=16, run_dir=run_dir, resume=True, seed=0,
      callbacks=[Probe()], verbose=0)
'''


def _child(tmp_path, run_dir, hang_epoch, log, seed=0):
    # Written once and renamed into place: rewriting one shared file for each
    # launch let a child start on a half-written script and exit 0 doing nothing.
    script = tmp_path / "child.py"
    if not script.exists():
        partial = tmp_path / "child.py.partial"
        partial.write_text(_CHILD)
        os.replace(partial, script)
    return subprocess.Popen([sys.executable, str(script), str(run_dir), str(hang_epoch), str(log)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "SEED": str(seed)})


def _epochs_started(log):
    return [int(x) for x in log.read_text().split()]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_continues_and_loses_nothing(tmp_path):
    import signal
    import time

    run_dir, log = tmp_path / "run", tmp_path / "epochs.log"
    proc = _child(tmp_path, run_dir, 3, log)
    deadline = time.time() + 120
    while not (tmp_path / "epochs.log.hanging").exists():
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "child never reached epoch 3"
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)  # mid-epoch 3: epochs 0-2 are complete
    assert proc.wait(30) == -signal.SIGKILL
    assert not (run_dir / "run.json").exists()  # the run had not finished
    assert len(read_history(run_dir / "history.csv")["loss"]) == 3

    log.unlink()
    resumed = _child(tmp_path, run_dir, -1, log)
    assert resumed.wait(300) == 0, resumed.stderr.read()
    assert _epochs_started(log) == [3, 4, 5]  # from the last completed epoch, not from zero

    uninterrupted_dir, uninterrupted_log = tmp_path / "clean", tmp_path / "clean.log"
    clean = _child(tmp_path, uninterrupted_dir, -1, uninterrupted_log)
    assert clean.wait(300) == 0, clean.stderr.read()

    run, reference = Run.load(run_dir), Run.load(uninterrupted_dir)
    assert run.epochs_run == reference.epochs_run == 6
    history = read_history(run_dir / "history.csv")
    assert set(history) == set(reference.history) and all(len(v) == 6 for v in history.values())
    assert not any(np.isnan(v) for v in history["val_accuracy"])
    best = keras.saving.load_model(run_dir / "best.keras")
    assert best.predict(np.zeros((2, 16, 16, 3), np.uint8), verbose=0).shape == (2, 3)
    assert run.model is not None and run.evaluation.accuracy > 1 / 3
    assert not [p for p in run_dir.rglob("*") if ".tmp" in p.name]  # no leftovers


@pytest.mark.slow
def test_separate_processes_with_one_seed_agree_exactly(tmp_path):
    """What users rely on: rerunning the same script repeats every number."""
    procs = [_child(tmp_path, tmp_path / name, -1, tmp_path / f"{name}.log", seed=seed)
             for name, seed in [("a", 7), ("b", 7), ("c", 8)]]
    for proc in procs:
        assert proc.wait(300) == 0, proc.stderr.read()
    a, b, c = (Run.load(tmp_path / name, load_model=False) for name in "abc")
    assert a.history == b.history
    assert a.evaluation.to_dict() == b.evaluation.to_dict()
    assert a.history != c.history  # another seed is another run ...
    assert abs(a.history["accuracy"][-1] - c.history["accuracy"][-1]) < 0.25  # ... of the same kind


def test_flip_views_keep_cached_training_and_double_the_head_data(tiny):
    model = small_transfer_model(tiny)
    steps = []

    class CountSteps(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            steps.append(int(self.model.optimizer.iterations))

    run = train(model, tiny, epochs=1, batch_size=16, augment="flip", verbose=0,
                callbacks=[CountSteps()])
    assert run.config["cached_features"] and run.config["augment"] == "flip"
    assert steps == [-(-2 * len(tiny.y_train) // 16)]  # each image and its mirror image


@pytest.mark.parametrize("val_accuracy, shared", [([0.5, 0.6, 0.7], True), ([0.5, 0.7, 0.7], False)])
def test_best_checkpoint_of_the_last_epoch_is_stored_once(tmp_path, val_accuracy, shared):
    from transferkit.training.train import _share_best_if_last

    (tmp_path / "model.keras").write_bytes(b"final weights")
    (tmp_path / "best.keras").write_bytes(b"checkpoint weights")
    _share_best_if_last(tmp_path, {"val_accuracy": val_accuracy}, "val_accuracy")
    # The checkpoint keeps the first best epoch: only a best last epoch is the final model.
    assert (tmp_path / "best.keras").samefile(tmp_path / "model.keras") is shared
    assert (tmp_path / "model.keras").read_bytes() == b"final weights"


def test_photo_augmentation_trains_on_images_not_cached_features(tiny):
    model = small_transfer_model(tiny)
    run = train(model, tiny, epochs=1, batch_size=16, augment="photo", verbose=0)
    assert not run.config["cached_features"] and run.config["augment"] == "photo"
    with pytest.raises(ConfigurationError, match="augmentation changes the images"):
        train(model, tiny, epochs=1, augment="photo", cache_features=True, verbose=0)
    with pytest.raises(ConfigurationError, match="augment must be"):
        train(model, tiny, epochs=1, augment="jitter", verbose=0)
