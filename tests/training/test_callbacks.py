import math

import keras
import numpy as np
import pytest

from transferkit.errors import ConfigurationError
from transferkit.runs.layout import read_history
from transferkit.training.callbacks import default_callbacks, lr_callback, step_decay, warmup_cosine


def test_warmup_cosine_documented_values():
    s = warmup_cosine(1e-3, 110, warmup_steps=10, final_lr_ratio=0.01)
    assert float(s(0)) == pytest.approx(1e-3 / 11)
    assert float(s(5)) == pytest.approx(1e-3 / 11 + 0.5 * (1e-3 - 1e-3 / 11))
    assert float(s(10)) == pytest.approx(1e-3)
    assert float(s(60)) == pytest.approx(1e-3 * (0.01 + 0.99 * 0.5))  # half-way through the decay
    assert float(s(110)) == pytest.approx(1e-5)
    assert float(s(500)) == pytest.approx(1e-5)
    no_warmup = warmup_cosine(0.1, 10, final_lr_ratio=0.0)
    assert float(no_warmup(0)) == pytest.approx(0.1) and float(no_warmup(10)) == pytest.approx(0.0)


def test_step_decay_values():
    s = step_decay(0.1, 10, factor=0.5)
    assert [round(float(s(t)), 6) for t in (0, 9, 10, 25)] == [0.1, 0.1, 0.05, 0.025]


@pytest.mark.parametrize("call", [
    lambda: warmup_cosine(0, 10), lambda: warmup_cosine(1e-3, 10, warmup_steps=10),
    lambda: step_decay(0.1, 0), lambda: step_decay(0.1, 3, factor=1.5), lambda: lr_callback("linear", 0.1, 3),
])
def test_schedule_argument_errors(call):
    with pytest.raises(ConfigurationError):
        call()


def _tiny_model():
    m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    m.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy", metrics=["accuracy"])
    return m


def test_lr_callbacks_drive_the_optimizer_in_plain_fit():
    x = np.random.default_rng(0).normal(size=(32, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    seen = []
    record = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs: seen.append(float(m.optimizer.learning_rate.numpy())))
    m = _tiny_model()
    m.fit(x, y, epochs=4, verbose=0, callbacks=[lr_callback("step", 0.1, 4, drop_every=2), record])
    assert seen == pytest.approx([0.1, 0.1, 0.05, 0.05])
    seen.clear()
    m = _tiny_model()
    m.fit(x, y, epochs=5, verbose=0, callbacks=[lr_callback("cosine", 0.1, 5, warmup_epochs=1), record])
    assert seen[0] == pytest.approx(0.05) and seen[1] == pytest.approx(0.1) and seen[-1] < seen[2]


def test_default_callbacks_in_plain_fit_write_history_and_best_model(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 2)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    m = _tiny_model()
    cbs = default_callbacks(tmp_path, monitor="val_accuracy", patience=2, schedule="plateau", base_lr=0.1)
    kinds = [type(c).__name__ for c in cbs]
    assert kinds == ["ReduceLROnPlateau", "CSVLogger", "AtomicBackupAndRestore",
                     "AtomicModelCheckpoint", "EarlyStopping"]
    assert isinstance(cbs[2], keras.callbacks.BackupAndRestore)
    assert isinstance(cbs[3], keras.callbacks.ModelCheckpoint)
    m.fit(x, y, validation_split=0.25, epochs=3, verbose=0, callbacks=cbs)
    hist = read_history(tmp_path / "history.csv")
    assert len(hist["val_accuracy"]) == 3 and "learning_rate" in hist
    assert keras.saving.load_model(tmp_path / "best.keras").output_shape == (None, 2)
    assert not (tmp_path / "backup").exists() or not any((tmp_path / "backup").iterdir())


def test_early_stopping_stops_and_restores_best_weights(tmp_path):
    class WorsenAfter(keras.callbacks.Callback):
        """Feeds a val metric that peaks at epoch 1 and then gets worse."""

        def on_epoch_end(self, epoch, logs):
            logs["val_accuracy"] = [0.5, 0.9, 0.6, 0.55, 0.5, 0.4][epoch]
            self.snapshots.append([w.numpy().copy() for w in self.model.weights])

    probe = WorsenAfter()
    probe.snapshots = []
    x = np.random.default_rng(1).normal(size=(32, 2)).astype("float32")
    y = (x[:, 1] > 0).astype("int32")
    m = _tiny_model()
    cbs = [probe, *default_callbacks(tmp_path, patience=2)]
    m.fit(x, y, epochs=6, verbose=0, callbacks=cbs)
    assert len(probe.snapshots) == 4  # epochs 0..3, then patience ran out
    for w, best in zip(m.weights, probe.snapshots[1]):
        np.testing.assert_array_equal(w.numpy(), best)


def test_read_history_keeps_last_row_of_a_repeated_epoch(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,accuracy,loss\n0,0.5,1.0\n1,0.6,0.9\n1,0.65,0.85\n2,0.7,\n")
    h = read_history(path)
    assert h["accuracy"] == [0.5, 0.65, 0.7]
    assert math.isnan(h["loss"][2])
    assert read_history(tmp_path / "missing.csv") == {}
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # every save was renamed in


def test_checkpoint_on_resume_only_improves_on_recorded_best(tmp_path):
    (tmp_path / "history.csv").write_text("epoch,val_accuracy\n0,0.8\n")
    checkpoint = default_callbacks(tmp_path)[2]
    assert type(checkpoint).__name__ == "AtomicModelCheckpoint"
    assert checkpoint.best == pytest.approx(0.8)


def test_half_written_history_row_is_cut_before_reading_or_appending(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,0.9\n1,0.8\n2,0.7")  # killed while writing epoch 2
    assert read_history(path) == {"loss": [0.9, 0.8]}
    assert path.read_text().endswith("1,0.8\n")  # the next epoch starts on a fresh line
