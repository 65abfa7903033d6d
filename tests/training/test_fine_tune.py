"""fine_tune: the measured recipe, progressive resizing, views that share weights, resume."""

import json

import keras
import numpy as np
import pytest
from conftest import requires_cifar, requires_imagenet
from harness import real_subset

from transferkit.errors import ConfigurationError, UnknownNameError
from transferkit.models.anatomy import find_backbone
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.runs.layout import read_history
from transferkit.training import head_first
from transferkit.training.head_first import _at_chance, head_first_data
from transferkit.training.progressive import progressive_phases
from transferkit.training.recipes import fine_tune
from transferkit.training.train import train


def _tiny_backbone():
    # Any spatial size in: resolution views can re-run it at 48 px as well as 64.
    inp = keras.Input((None, None, 3))
    x = keras.layers.Rescaling(1 / 255)(inp)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", name="conv_a")(x)
    x = keras.layers.BatchNormalization(name="bn_a")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.Conv2D(16, 3, strides=2, padding="same", name="conv_b")(x)
    return keras.Model(inp, x, name="tiny_backbone")


def _upscaling_model(data, image_size=64):
    return build_transfer_model(_tiny_backbone(), data.num_classes, input_shape=data.image_shape,
                                image_size=image_size, head=(8,))


def test_auto_plan_is_progressive_only_where_the_model_upscales(tiny):
    mobilenet = build_transfer_model("mobilenet_v2", 10, weights=None)
    assert progressive_phases(mobilenet, 8) == [(64, 6), (96, 8)]
    assert progressive_phases(mobilenet, 10) == [(64, 7), (96, 10)]
    assert progressive_phases(mobilenet, 3) is None  # too few epochs to pay off
    assert progressive_phases(mobilenet, 8, train_images=9_000) is None  # too few images
    assert progressive_phases(mobilenet, 8, train_images=50_000) == [(64, 6), (96, 8)]
    assert progressive_phases(mobilenet, 8, progressive=True, train_images=900) == [(64, 6), (96, 8)]
    assert progressive_phases(mobilenet, 8, progressive=False) is None
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape)
    assert progressive_phases(cnn, 8) is None
    with pytest.raises(ConfigurationError, match="upscale"):
        progressive_phases(cnn, 8, progressive=True)
    assert progressive_phases(mobilenet, 5, progressive=[(48, 3), (96, 2)]) == [(48, 3), (96, 5)]
    with pytest.raises(ConfigurationError, match="add up"):
        progressive_phases(mobilenet, 6, progressive=[(48, 3), (96, 2)])


def test_a_view_shares_every_weight_and_training_it_trains_the_model(tiny):
    model = _upscaling_model(tiny)
    view = model.resolution_view(48)
    assert model.resolution_view(64) is model
    assert {id(w) for w in view.weights} == {id(w) for w in model.weights}
    assert view.get_layer("resize_48").get_config()["height"] == 48
    before = [w.numpy().copy() for w in model.trainable_weights]
    view.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    view.fit(tiny.x_train, tiny.y_train, epochs=1, verbose=0)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


def test_fine_tune_defaults_train_the_whole_backbone_but_batchnorm(tiny):
    model = _upscaling_model(tiny)
    train(model, tiny, epochs=1, verbose=0)
    run = fine_tune(model, tiny, epochs=4, seed=0, verbose=0)
    base = find_backbone(model)
    assert base.get_layer("conv_a").trainable and not base.get_layer("bn_a").trainable
    recipe = run.config["recipe"]
    assert recipe["phases"] is None  # a few hundred images: one size (see MIN_PROGRESSIVE_IMAGES)
    assert recipe["optimizer"] == "adamw"
    assert recipe["batch_size"] == 64 and recipe["lr"] == pytest.approx(2.5e-4)
    assert run.config["lr"] == pytest.approx(2.5e-4)  # the peak, not the decayed end value
    assert run.epochs_run == 4 and run.config["augment"]
    assert type(model.optimizer).__name__ == "AdamW"


def test_a_head_at_chance_is_trained_first_on_the_frozen_backbone(tiny):
    model = _upscaling_model(tiny)
    keras.utils.set_random_seed(0)
    run = fine_tune(model, tiny, epochs=1, head_first=True, seed=0, verbose=0)
    first = run.config["recipe"]["head_first"]
    assert first["epochs"] == 30 and 0 <= first["val_accuracy"] <= 1  # 2 steps an epoch: 30 epochs
    assert find_backbone(model).get_layer("conv_b").trainable  # fine-tuning unfroze it again
    assert fine_tune(_upscaling_model(tiny), tiny, epochs=1, head_first=False,
                     verbose=0).config["recipe"]["head_first"] is None
    with pytest.raises(ConfigurationError, match="head_first"):
        fine_tune(model, tiny, head_first="yes", verbose=0)


def test_the_head_trained_first_sees_a_stratified_share_and_no_test_split(tiny, monkeypatch):
    # 3 classes of 28-29 training images: a cap of 30 keeps 10 of each, all of them real rows.
    monkeypatch.setattr(head_first, "HEAD_FIRST_IMAGES", 30)
    small = head_first_data(tiny, seed=0)
    assert np.bincount(small.y_train).tolist() == [10, 10, 10] and len(small.y_test) == 0
    assert len(small.y_val) == len(tiny.y_val)  # under the cap: whole
    rows = {x.tobytes(): y for x, y in zip(tiny.x_train, tiny.y_train, strict=True)}
    assert all(rows[x.tobytes()] == y for x, y in zip(small.x_train, small.y_train, strict=True))
    assert not np.array_equal(head_first_data(tiny, seed=1).x_train, small.x_train)  # seeded
    keras.utils.set_random_seed(0)
    run = fine_tune(_upscaling_model(tiny), tiny, epochs=1, head_first=True, seed=0, verbose=0)
    assert run.config["recipe"]["head_first"]["images"] == 30
    assert run.config["data"]["sizes"]["test"] == len(tiny.y_test)  # the fine-tune's own: whole


def test_auto_head_first_asks_whether_the_model_scores_at_chance(tiny):
    class Scores:  # predicts the true class for the first `right` validation images
        def __init__(self, right):
            self.right = right

        def predict(self, x, verbose=0):
            probs = np.eye(3)[(tiny.y_val[: len(x)] + 1) % 3]
            probs[: self.right] = np.eye(3)[tiny.y_val[: self.right]]
            return probs

    n = len(tiny.y_val)
    assert _at_chance(Scores(0), tiny) and _at_chance(Scores(n // 3), tiny)
    assert not _at_chance(Scores(n // 2 + 1), tiny)  # 1.5x chance (0.5) and above: trained


@pytest.mark.slow
def test_auto_unfreeze_uses_the_backbones_measured_choice(tiny):
    model = build_transfer_model("mobilenet_v2", 3, input_shape=tiny.image_shape, image_size=32,
                                 weights=None)
    run = fine_tune(model, tiny, epochs=1, head_first=False, verbose=0)
    base = find_backbone(model)
    assert not base.get_layer("block_5_project").trainable  # stem and blocks 1-5 stay frozen
    assert base.get_layer("block_6_expand").trainable and base.get_layer("Conv_1").trainable
    assert not base.get_layer("Conv_1_bn").trainable
    assert run.config["recipe"]["frozen_through"] == "block_5_add"
    fine_tune(model, tiny, epochs=1, unfreeze="all", head_first=False, verbose=0)
    assert base.get_layer("Conv1").trainable


def test_fine_tuned_model_saves_and_loads_with_identical_predictions(tiny, tmp_path):
    model = _upscaling_model(tiny)
    fine_tune(model, tiny, epochs=4, seed=0, verbose=0, run_dir=tmp_path / "ft")
    loaded = keras.saving.load_model(tmp_path / "ft" / "model.keras")
    np.testing.assert_allclose(loaded.predict(tiny.x_test, verbose=0),
                               model.predict(tiny.x_test, verbose=0), atol=1e-6)
    assert loaded.get_layer("resize").get_config()["height"] == 64  # the full-size model
    assert not (tmp_path / "ft" / "backup").exists()  # phase backups go when the run is done


class _StopAt(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupted_progressive_run_resumes_without_repeating_epochs(tiny, tmp_path):
    run_dir = tmp_path / "ft"
    keras.utils.set_random_seed(0)
    model = _upscaling_model(tiny)
    with pytest.raises(KeyboardInterrupt):
        fine_tune(model, tiny, epochs=5, seed=0, verbose=0, run_dir=run_dir, progressive=True,
                  callbacks=[_StopAt(3)])
    assert len(read_history(run_dir / "history.csv")["loss"]) == 3  # epoch 4 was cut short
    keras.utils.set_random_seed(0)
    fresh = _upscaling_model(tiny)
    run = fine_tune(fresh, tiny, epochs=5, seed=0, verbose=0, run_dir=run_dir, resume=True,
                    progressive=True)
    history = read_history(run_dir / "history.csv")
    assert len(history["loss"]) == 5 and run.epochs_run == 5
    assert json.loads((run_dir / "run.json").read_text())["config"]["recipe"]["phases"]
    # The finished phase and the 4 finished epochs were restored, not retrained:
    assert int(fresh.optimizer.iterations) == 5 * -(-len(tiny.y_train) // 64)


def test_fine_tune_rejects_bad_arguments(tiny):
    model = _upscaling_model(tiny)
    for kwargs, match in [({"warmup": 1.5}, "warmup"), ({"epochs": 0}, "epochs"),
                          ({"lr": -1.0}, "lr"), ({"schedule": "cosine"}, "schedule"),
                          ({"cache_features": True}, "cache_features")]:
        with pytest.raises(ConfigurationError, match=match):
            fine_tune(model, tiny, verbose=0, **kwargs)
    with pytest.raises(UnknownNameError, match="conv_a"):  # lists the valid names
        fine_tune(model, tiny, unfreeze="no_such_layer", verbose=0)


@pytest.fixture(scope="session")
def real_runs(cifar):
    """On 100 images per class: a CNN from scratch (5 epochs), the frozen head (3 epochs),
    then default fine-tuning of that head three ways: the default (the frozen prefix's
    activations cached), images every epoch at full size, and progressive resizing forced
    with as many full-size epochs as low-size ones (on 900 images ``"auto"`` keeps one
    size). The head is trained once and copied into each way's model."""
    data = real_subset(cifar, per_class=100, seed=0)
    keras.utils.set_random_seed(0)
    results = {"baseline": train(build_baseline_cnn(10), data, epochs=5, seed=0,
                                 verbose=0).evaluation.accuracy}
    keras.utils.set_random_seed(0)
    model = build_transfer_model("mobilenet_v2", 10, head=(), dropout=0.0)
    head = train(model, data, epochs=3, verbose=0)
    assert head.config["cached_features"]
    results["head"], weights = head.evaluation.accuracy, model.get_weights()
    ways = {"cached": {}, "plain": {"cache_prefix": False, "progressive": False},
            "progressive": {"progressive": [(64, 2), (96, 2)]}}
    for way, options in ways.items():
        keras.utils.set_random_seed(0)
        model = build_transfer_model("mobilenet_v2", 10, head=(), dropout=0.0)
        model.set_weights(weights)
        run = fine_tune(model, data, epochs=4, seed=0, verbose=0, **options)
        assert bool(run.config["recipe"]["cached_prefix"]) == (way == "cached")
        assert run.config["recipe"]["head_first"] is None  # the copied head is trained
        results[way] = run.evaluation.accuracy
    return results


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
@pytest.mark.xdist_group("real_runs")  # one worker trains the fixture's runs
def test_real_transfer_and_fine_tuning_beat_a_cnn_from_scratch(real_runs):
    # Measured on this subset (AVX-512 Xeon, 2026-12-02): the CNN 0.363, the frozen head
    # 0.486, the default fine-tune 0.711. 1,000 test images: one standard error of a
    # difference of two accuracies near 0.4 is about 2.2 points; 8 points is well outside.
    assert real_runs["baseline"] > 0.2, real_runs  # the CNN learns too (chance: 0.1)
    assert real_runs["head"] > real_runs["baseline"] + 0.08, real_runs
    assert real_runs["cached"] > real_runs["baseline"] + 0.2, real_runs
    assert real_runs["cached"] > 0.55, real_runs


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
@pytest.mark.xdist_group("real_runs")  # one worker trains the fixture's runs
def test_real_default_fine_tuning_beats_the_frozen_head(real_runs):
    for way in ("cached", "plain", "progressive"):
        assert real_runs[way] > real_runs["head"] + 0.02, real_runs


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
@pytest.mark.xdist_group("real_runs")  # one worker trains the fixture's runs
def test_real_fast_paths_and_plain_path_agree_within_noise(real_runs):
    # 1,000 test images: one standard error of a difference of two accuracies near
    # 0.5 is about 2.2 points; 8 points is well outside noise.
    for way in ("cached", "progressive"):
        assert abs(real_runs[way] - real_runs["plain"]) < 0.08, real_runs


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
def test_real_one_epoch_fine_tune_of_a_fresh_model_learns(cifar):
    # One epoch at batch 256 (lr 1e-3): 12 steps. A warm-up of 5 % of them (1 step) took
    # the fresh head's first gradients into the backbone at the full rate; on full
    # CIFAR-10 that ended at chance (0.10). The head now trains first (0.58-0.61 here),
    # but a 6-step warm-up that still climbed to 1e-3 took it to 0.10-0.31 (AMD EPYC and
    # CI). Rising no faster than 30 steps to 1e-3 (peak 2.3e-4), it reached 0.64-0.65.
    data = real_subset(cifar, per_class=300, seed=0)
    keras.utils.set_random_seed(0)
    model = build_transfer_model("mobilenet_v2", data, head=())
    run = fine_tune(model, data, epochs=1, batch_size=256, seed=0, verbose=0)
    assert run.config["recipe"]["lr"] == pytest.approx(1e-3)
    assert run.evaluation.accuracy > 0.55, run.evaluation.accuracy  # chance: 0.1
    # It ends above where it started: the head trained first (0.58-0.61 -> 0.64-0.67 seen).
    start = run.config["recipe"]["head_first"]["val_accuracy"]
    assert run.history["val_accuracy"][-1] > start - 0.03, (start, run.history)


def test_a_backbone_of_any_size_fine_tunes_its_last_layers_without_the_prefix_cache(tiny):
    # (None, None) inputs: the frozen layer's activations have no size to plan memory for.
    model = _upscaling_model(tiny)
    run = fine_tune(model, tiny, unfreeze="conv_b", epochs=1, progressive=False, verbose=0)
    assert run.epochs_run == 1
