"""The smoothed sparse cross-entropy the recipes may compile with."""

import keras
import numpy as np
import pytest

from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_baseline_cnn, load_model
from transferkit.training.losses import SparseSmoothedCrossentropy

PROBS = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]], "float32")
LABELS = np.array([0, 2])


def test_equals_keras_categorical_crossentropy_on_one_hot_targets():
    onehot = keras.ops.one_hot(LABELS, 3)
    for s in (0.0, 0.1, 0.3):
        want = keras.losses.CategoricalCrossentropy(label_smoothing=s)(onehot, PROBS)
        got = SparseSmoothedCrossentropy(s)(LABELS, PROBS)
        np.testing.assert_allclose(float(got), float(want), rtol=1e-6)
    plain = keras.losses.SparseCategoricalCrossentropy()(LABELS, PROBS)
    assert float(SparseSmoothedCrossentropy(0.1)(LABELS, PROBS)) > float(plain)


def test_a_model_compiled_with_it_saves_and_loads(tmp_path):
    model = build_baseline_cnn(3, input_shape=(8, 8, 3), filters=(4,), head=())
    model.compile(optimizer="adam", loss=SparseSmoothedCrossentropy(0.2), metrics=["accuracy"])
    x = np.random.default_rng(0).integers(0, 256, (6, 8, 8, 3)).astype("float32")
    model.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    loaded = load_model(tmp_path / "m.keras")
    assert loaded.loss.label_smoothing == pytest.approx(0.2)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-6)


def test_bad_smoothing_is_refused():
    with pytest.raises(ConfigurationError, match="label_smoothing"):
        SparseSmoothedCrossentropy(1.0)
