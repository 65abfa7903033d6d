"""class_weight: resolved once, refused when wrong, and reaching fit on every fast path."""

import json

import keras
import numpy as np
import pytest
from sklearn.utils.class_weight import compute_class_weight

from transferkit.data.splits import DataSplits
from transferkit.data.synthetic import make_synthetic_dataset
from transferkit.errors import ConfigurationError, UnknownNameError
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.training.class_weight import resolve_class_weight
from transferkit.training.recipes import fine_tune, train_from_scratch
from transferkit.training.train import train

NAMES = ["cat", "dog", "fox"]
FAVOUR_FOX = {"cat": 0, "dog": 0, "fox": 1}
"""Weights that leave every class but the last out of the loss: a model trained with
them predicts only that class, whatever the images show."""


def test_balanced_is_scikit_learns_and_a_dict_fills_in_ones():
    y = np.array([0] * 30 + [1] * 6 + [2] * 3)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    balanced = resolve_class_weight("balanced", y, NAMES)
    assert list(balanced) == [0, 1, 2]
    np.testing.assert_allclose(list(balanced.values()), expected)
    assert balanced[2] == pytest.approx(10 * balanced[0])  # a tenth of the images, ten times the weight
    assert resolve_class_weight({"dog": 2.5, 2: 0}, y, NAMES) == {0: 1.0, 1: 2.5, 2: 0.0}
    assert resolve_class_weight(None, y, NAMES) is None
    # A class without training images weighs 1 (scikit-learn refuses it outright).
    assert resolve_class_weight("balanced", np.array([0, 0, 1]), NAMES)[2] == 1.0


@pytest.mark.parametrize("class_weight, error, message", [
    ({"cat": -1}, ConfigurationError, r"class_weight\['cat'\] must be a number >= 0, got -1"),
    ({"cat": float("nan")}, ConfigurationError, "must be a number >= 0"),
    ({"cat": float("inf")}, ConfigurationError, "must be a finite number"),
    ({"cat": True}, ConfigurationError, "must be a number"),
    ({"cat": 0, "dog": 0}, ConfigurationError, "every class it names weight 0"),
    ({"cta": 2}, UnknownNameError, "Unknown class 'cta'. Did you mean 'cat'.*Valid classes: cat"),
    ({3: 2}, ConfigurationError, "key 3 is not a class index: the data has 3 classes, 0 to 2"),
    ({"cat": 1, 0: 2}, ConfigurationError, "names class 'cat' twice"),
    ({1.5: 2}, ConfigurationError, "keys are class names or indices"),
    ("Balanced", ConfigurationError, "must be 'balanced', a {class name or index: weight} dict"),
    ([1, 2, 3], ConfigurationError, "must be 'balanced'"),
])
def test_bad_class_weights_are_refused_with_one_message(class_weight, error, message):
    with pytest.raises(error, match=message):
        resolve_class_weight(class_weight, np.array([0, 1, 2]), NAMES)


def test_train_refuses_bad_weights_before_anything_is_written(tiny, tmp_path):
    model = build_baseline_cnn(tiny, filters=(4,))
    with pytest.raises(ConfigurationError, match="must be a number >= 0"):
        train(model, tiny, class_weight={"class_0": -2.0}, run_dir=tmp_path / "a")
    with pytest.raises(UnknownNameError, match="Unknown class 'cat'"):  # keys: against the data
        train(model, tiny, class_weight={"cat": 2.0}, run_dir=tmp_path / "b")
    with pytest.raises(ConfigurationError, match="must be a number >= 0"):
        fine_tune(model, tiny, class_weight={0: -1})
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    transfer = _transfer(tiny)
    transfer.backbone.trainable = True
    with pytest.raises(UnknownNameError, match="Unknown class 'cat'"):
        fine_tune(transfer, tiny, class_weight={"cat": 2.0}, head_first=True)
    assert transfer.backbone.trainable  # refused before the head trained on a frozen backbone


def _recalls(run) -> list[float]:
    return [round(r, 2) for r in run.evaluation.recall_per_class.values()]


def _fixed_backbone(size: int) -> keras.Model:
    inp = keras.Input((size, size, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(x)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv_b")(x)
    return keras.Model(inp, x, name="tiny_backbone")


def _transfer(data, image_size=None):
    size = image_size or data.image_shape[0]
    return build_transfer_model(_fixed_backbone(size), data.num_classes,
                                input_shape=data.image_shape, image_size=image_size, head=(8,))


# Each way a call feeds fit: arrays (and the budget's timed steps), augmented batches
# (a PyDataset; tf.data on TensorFlow), cached features of images and mirror images,
# cached prefix activations (a PyDataset of shifted views), resolution views.
PATHS = {
    "arrays_with_budget": lambda d, w: train(
        build_baseline_cnn(d, filters=(4,)), d, budget=300, epochs=2, lr=1e-2,
        batch_size=16, verbose=0, class_weight=w),
    "augmented_batches": lambda d, w: train_from_scratch(
        build_baseline_cnn(d, filters=(4,)), d, epochs=2, lr=1e-2, batch_size=16, verbose=0,
        class_weight=w),
    "cached_head_flip": lambda d, w: train(
        _transfer(d), d, epochs=2, lr=3e-2, batch_size=16, augment="flip", verbose=0,
        class_weight=w),
    "cached_prefix": lambda d, w: fine_tune(
        _transfer(d), d, unfreeze="bn_a", epochs=2, lr=1e-2, batch_size=16, head_first=False,
        warmup=0, verbose=0, class_weight=w),
    "progressive": lambda d, w: fine_tune(
        _transfer(d, image_size=32), d, epochs=2, progressive=[(16, 1), (32, 1)], lr=1e-2,
        batch_size=16, head_first=False, warmup=0, verbose=0, class_weight=w),
}
# The fine-tunes have no warm-up: 14 steps of one would peak at 8/31 of lr (short_run_peak),
# too little to move the predictions on PyTorch; this is about the weights reaching fit.


@pytest.fixture
def animals():
    """The ``tiny`` fixture's images under the names of three animals."""
    return make_synthetic_dataset(3, per_class=36, image_size=16, test_per_class=8, seed=1,
                                  class_names=NAMES)


@pytest.mark.parametrize("path", list(PATHS))
def test_weights_reach_fit_on_every_path(animals, path):
    keras.utils.set_random_seed(0)
    run = PATHS[path](animals, FAVOUR_FOX)
    assert _recalls(run) == [0.0, 0.0, 1.0]  # only the weighted class is ever predicted
    assert run.config["class_weight"] == {"given": "dict",
                                          "weights": {"cat": 0.0, "dog": 0.0, "fox": 1.0}}
    if path == "cached_prefix":
        assert run.config["recipe"]["cached_prefix"] == "bn_a"
    if path == "progressive":
        assert [tuple(p) for p in run.config["recipe"]["phases"]] == [(16, 1), (32, 2)]
    json.dumps(run.config)  # the record stays JSON


def test_balanced_weights_are_recorded_by_class_name(animals, tmp_path):
    keep = np.concatenate([np.flatnonzero(animals.y_train == 0),
                           np.flatnonzero(animals.y_train != 0)[::6]])  # cats: about 6x the rest
    data = DataSplits(animals.x_train[keep], animals.y_train[keep], animals.x_val,
                      animals.y_val, animals.x_test, animals.y_test, NAMES)
    run = train(build_baseline_cnn(data, filters=(4,)), data, epochs=1, verbose=0,
                class_weight="balanced", run_dir=tmp_path)
    counts = np.bincount(data.y_train)
    weights = json.loads((tmp_path / "run.json").read_text())["config"]["class_weight"]
    assert weights["given"] == "balanced" and list(weights["weights"]) == NAMES
    expected = len(data.y_train) / (3 * counts)
    np.testing.assert_allclose(list(weights["weights"].values()), expected, rtol=1e-5)
    assert run.config["class_weight"] == weights
