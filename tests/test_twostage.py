import keras
import numpy as np
import pytest

from transferkit.errors import ConfigurationError
from transferkit.models.anatomy import find_backbone
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.twostage import two_stage, warm_start


def test_two_stage_keeps_transferred_layers_bit_identical(tiny, tmp_path):
    data = tiny.subset([0, 1, 2])
    res = two_stage(data, ["class_0", "class_1"], ["class_2", "class_0"], epochs=2, batch_size=16,
                    seed=0, run_dir=tmp_path, verbose=0)
    stage1 = res.first.model.get_layer("features")
    stage2 = find_backbone(res.second.model)
    for a, b in zip(stage1.weights, stage2.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert res.first.evaluation.class_names == ["class_0", "class_1"]
    assert res.second.evaluation.class_names == ["class_2", "class_0"]
    assert res.second.config["cached_features"]
    assert res.fine_tuned is None
    assert (tmp_path / "stage1" / "run.json").exists() and (tmp_path / "stage2" / "model.keras").exists()


def test_warm_start_copies_the_block_into_a_new_network_that_trains_whole():
    source = build_baseline_cnn(7, input_shape=(16, 16, 3), filters=(8, 16), residual=True)
    source.backbone.trainable = False  # a frozen source must not freeze the copy
    new = warm_start(source, 3, name="new")
    assert new.output_shape == (None, 3) and new.name == "new"
    assert new.backbone is not source.backbone
    for a, b in zip(source.backbone.weights, new.backbone.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    bn = [x for x in new.backbone.layers if isinstance(x, keras.layers.BatchNormalization)]
    assert bn and all(x.trainable for x in new.backbone.layers)
    before = [w.numpy().copy() for w in source.backbone.weights]
    new.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    new.fit(np.random.default_rng(0).integers(0, 255, (8, 16, 16, 3)).astype("uint8"),
            np.arange(8) % 3, epochs=1, verbose=0)
    for b, w in zip(before, source.backbone.weights):  # training the copy leaves the source alone
        np.testing.assert_array_equal(b, w.numpy())


def test_warm_start_names_what_it_needs():
    with pytest.raises(ConfigurationError, match="BaselineCNN"):
        warm_start(build_transfer_model("mobilenet_v2", 3, weights=None), 2)


def test_two_stage_fine_tune_trains_a_warm_started_copy(tiny, tmp_path):
    data = tiny.subset([0, 1, 2])
    res = two_stage(data, ["class_0", "class_1"], ["class_2", "class_0"], epochs=2, seed=0,
                    run_dir=tmp_path, verbose=0, fine_tune=True,
                    cnn=build_baseline_cnn(2, input_shape=data.image_shape, filters=(8, 16),
                                           residual=True))
    tuned = res.fine_tuned
    assert tuned.name == "stage2_finetuned" and tuned.evaluation.class_names == ["class_2", "class_0"]
    assert tuned.config["recipe"]["optimizer"] == "adamw"
    moved = [not np.array_equal(a.numpy(), b.numpy())
             for a, b in zip(res.first.model.backbone.weights, tuned.model.backbone.weights)]
    assert moved and all(moved), "every weight of the warm-started block trains (BatchNorm included)"
    assert (tmp_path / "stage2_finetuned" / "model.keras").exists()


def test_two_stage_fine_tune_refuses_a_cnn_it_cannot_warm_start_before_training(tiny, tmp_path):
    data = tiny.subset([0, 1, 2])
    cnn = build_transfer_model("mobilenet_v2", 2, input_shape=data.image_shape, weights=None)
    with pytest.raises(ConfigurationError, match="BaselineCNN"):
        two_stage(data, ["class_0", "class_1"], ["class_2", "class_0"], epochs=1,
                  run_dir=tmp_path, verbose=0, fine_tune=True, cnn=cnn)
    assert not (tmp_path / "stage1").exists()  # nothing trained


@pytest.mark.parametrize("first_recipe", [False, True])
def test_two_stage_lr_and_batch_size_reach_every_stage(tiny, first_recipe):
    data = tiny
    res = two_stage(data, ["class_0", "class_1"], ["class_2", "class_0"], epochs=1, seed=0,
                    verbose=0, lr=3e-4, batch_size=8, first_recipe=first_recipe, fine_tune=True,
                    cnn=build_baseline_cnn(2, input_shape=data.image_shape, filters=(8, 16),
                                           residual=True))
    for run in (res.first, res.second, res.fine_tuned):
        assert run.config["batch_size"] == 8, run.name
        assert run.config["lr"] == pytest.approx(3e-4), run.name
    assert res.fine_tuned.config["recipe"]["lr"] == pytest.approx(3e-4)


def test_two_stage_stages_keep_their_own_defaults_when_not_given(tiny):
    data = tiny
    res = two_stage(data, ["class_0", "class_1"], ["class_2", "class_0"], epochs=1, seed=0,
                    verbose=0, first_recipe=True)
    # The scratch recipe scales its learning rate with its batch (64 for small data): 1e-3.
    assert res.first.config["recipe"]["batch_size"] == 64
    assert res.first.config["lr"] == pytest.approx(2e-3 * 64 / 128)
    assert res.second.config["batch_size"] == 64 and res.second.config["lr"] == pytest.approx(1e-3)
