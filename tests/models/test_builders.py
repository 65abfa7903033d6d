import logging

import keras
import numpy as np
import pytest
from harness import assert_round_trip

from transferkit.errors import ConfigurationError, DataError, UnknownNameError
from transferkit.models.anatomy import (
    check_model_input,
    find_backbone,
    parameter_counts,
)
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.freezing import freeze, unfreeze_last


def _small(**kw):
    kw.setdefault("weights", None)
    return build_transfer_model("mobilenet_v2", 4, **kw)


def test_transfer_model_upscales_small_inputs_and_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="transferkit"):
        model = _small()
    assert model.input_shape == (None, 32, 32, 3) and model.output_shape == (None, 4)
    assert model.get_layer("resize").output.shape[1:3] == (96, 96)
    assert find_backbone(model).input_shape == (None, 96, 96, 3)
    assert sum("Upscaling 32x32 inputs to 96x96" in r.message for r in caplog.records) == 1


def test_transfer_model_keeps_large_inputs_and_honours_image_size():
    m = build_transfer_model("mobilenet_v2", 3, input_shape=(128, 128, 3), weights=None)
    assert "resize" not in [x.name for x in m.layers]
    m = build_transfer_model("mobilenet_v2", 3, input_shape=(32, 32, 3), image_size=64, weights=None)
    assert find_backbone(m).input_shape[1:3] == (64, 64)


def test_head_layout_and_float32_output():
    m = _small(head=(64, 32), dropout=0.2)
    names = [x.name for x in m.layers]
    assert names[-5:] == ["pool", "head_dense_1", "head_dense_2", "head_dropout", "predictions"]
    assert m.get_layer("head_dropout").rate == 0.2
    assert m.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    assert [x.name for x in _small(head=()).layers][-3:] == ["pool", "head_dropout", "predictions"]


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 1}, "num_classes"), ({"input_shape": (32, 32)}, "input_shape"),
    ({"dropout": 1.0}, "dropout"), ({"freeze": 10_000}, "last 10000 layers"),
    ({"freeze": 2.5}, "freeze must be"), ({"input_shape": (32, 32, 1)}, "3 channels"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    kwargs = {"num_classes": 4, **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        build_transfer_model("mobilenet_v2", weights=None, **kwargs)


def test_freeze_variants_keep_batchnorm_frozen():
    frozen = _small(freeze=True)
    assert not find_backbone(frozen).trainable_weights
    assert parameter_counts(frozen)["trainable"] == 128 * 1280 + 128 + 128 * 4 + 4
    last = find_backbone(_small(freeze=5))
    layers = [x for x in last.layers if not isinstance(x, keras.layers.InputLayer)]
    assert all(not x.trainable for x in layers[:-5])
    assert [x.trainable for x in layers[-5:]] == [
        not isinstance(x, keras.layers.BatchNormalization) for x in layers[-5:]]
    by_name = find_backbone(_small(freeze="block_16_project_BN"))
    assert by_name.get_layer("Conv_1").trainable and not by_name.get_layer("block_16_project").trainable
    with pytest.raises(UnknownNameError, match="Conv_1"):
        _small(freeze="Conv_11")
    full = find_backbone(_small(freeze=False))
    assert all(not x.trainable for x in full.layers if isinstance(x, keras.layers.BatchNormalization))
    assert full.get_layer("Conv1").trainable


def test_unfreeze_last_recompiles_a_compiled_model(caplog):
    m = _small()
    m.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    before = len(m.trainable_weights)
    with caplog.at_level(logging.WARNING, logger="transferkit"):
        unfreeze_last(m, 10)
    assert len(m.trainable_weights) > before and m.compiled
    assert any("recompiled" in r.message for r in caplog.records)
    assert m.optimizer.iterations.numpy() == 0  # fresh optimizer state
    unfreeze_last(m, 0)
    assert len(m.trainable_weights) == before
    with pytest.raises(ConfigurationError):
        unfreeze_last(m, -1)
    freeze(find_backbone(m), trainable=False)
    assert len(m.trainable_weights) == before


def test_baseline_cnn_structure_and_errors():
    cnn = build_baseline_cnn(10)
    assert cnn.get_layer("features").output_shape == (None, 4, 4, 128)
    assert parameter_counts(cnn)["trainable"] > 250_000
    with pytest.raises(ConfigurationError, match="pooling blocks"):
        build_baseline_cnn(10, input_shape=(4, 4, 3))


def test_keras_model_as_backbone_is_cloned(raw_images):
    cnn = build_baseline_cnn(7)
    t = build_transfer_model(cnn.get_layer("features"), 3, freeze=True)
    base = find_backbone(t)
    assert base is not cnn.get_layer("features") and not base.trainable_weights
    for a, b in zip(base.weights, cnn.get_layer("features").weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert cnn.get_layer("features").trainable  # the original is untouched
    with pytest.raises(ConfigurationError, match="feature maps"):
        build_transfer_model(cnn, 3)


@pytest.mark.parametrize("builder", [
    lambda: build_transfer_model("mobilenet_v2", 4, weights=None),
    # ResNet50 (caffe preprocessing) writes and reads 94 MB: on TensorFlow only (34 s on JAX);
    # the other two cover saving on every backend.
    pytest.param(lambda: build_transfer_model("resnet50", 4, input_shape=(32, 32, 3), image_size=32,
                                              weights=None), marks=pytest.mark.backend_neutral),
    lambda: build_baseline_cnn(4),
])
def test_models_save_and_load_with_identical_predictions(tmp_path, raw_images, builder):
    model = builder()
    loaded = assert_round_trip(model, raw_images, tmp_path)
    # Plain Keras loads the file too: importing transferkit registers its classes.
    plain = keras.saving.load_model(tmp_path / f"{model.name}.keras")
    assert type(plain) is type(loaded)
    np.testing.assert_allclose(plain.predict(raw_images, verbose=0),
                               loaded.predict(raw_images, verbose=0), rtol=0, atol=1e-5)


def test_split_at_pool_reproduces_model_and_shares_layers(raw_images):
    m = _small()
    feats, head = m.split_at_pool()
    np.testing.assert_allclose(head.predict(feats.predict(raw_images, verbose=0), verbose=0),
                               m.predict(raw_images, verbose=0), rtol=1e-5, atol=1e-6)
    assert head.get_layer("predictions") is m.get_layer("predictions")


def test_check_model_input(raw_images):
    with pytest.raises(DataError, match=r"\(32, 32, 3\)"):
        check_model_input(_small(), raw_images[:, :16])


def test_load_model_tells_a_missing_file_from_a_file_that_is_not_a_model(tmp_path):
    from transferkit.errors import DataNotFoundError
    from transferkit.models.builders import load_model

    with pytest.raises(DataNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.keras")
    fake = tmp_path / "fake.keras"
    fake.write_text("a text file renamed .keras\n")
    with pytest.raises(ConfigurationError, match="not a Keras model file") as err:
        load_model(fake)
    assert "not found" not in str(err.value).lower()
    not_a_model = tmp_path / "photos.keras"  # a zip archive, but not of a model
    import zipfile

    with zipfile.ZipFile(not_a_model, "w") as z:
        z.writestr("a/0.png", b"png")
    with pytest.raises(ConfigurationError, match="not a Keras model file"):
        load_model(not_a_model)
