"""TransferClassifier and BaselineCNN: parts, config round-trips, .keras files."""

import keras
import numpy as np
import pytest
from harness import assert_round_trip

from transferkit.data.synthetic import make_synthetic_dataset
from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_transfer_model
from transferkit.models.classifier import TRANSFERRED, BaselineCNN, TransferClassifier
from transferkit.models.freezing import unfreeze_last
from transferkit.reporting._parts import step
from transferkit.training.train import train

IMAGES = np.random.default_rng(0).integers(0, 256, (4, 32, 32, 3)).astype("float32")


def test_transfer_classifier_knows_its_parts():
    model = TransferClassifier("mobilenet_v2", 4, weights=None, head=(16,))
    assert model.backbone.name == "mobilenet_v2" and model.backbone is model.get_layer("mobilenet_v2")
    assert tuple(model.backbone_input.shape) == (None, 96, 96, 3)
    assert model.pool.name == "pool"
    assert [layer.name for layer in model.head_layers] == ["head_dense_1", "head_dropout",
                                                           "predictions"]
    assert not model.pretrained and not model.backbone.trainable_weights


def test_config_holds_the_constructor_arguments_and_rebuilds_the_same_model():
    model = TransferClassifier("mobilenet_v2", 3, input_shape=(40, 40, 3), weights=None,
                               freeze=12, head=(32, 16), dropout=0.2, name="m")
    config = model.get_config()
    assert config == {"backbone": "mobilenet_v2", "num_classes": 3, "input_shape": [40, 40, 3],
                      "image_size": 96, "head": [32, 16], "dropout": 0.2, "weights": None,
                      "freeze": 12, "name": "m", "trainable": True}
    clone = TransferClassifier.from_config(config)
    assert clone.count_params() == model.count_params()
    assert len(clone.trainable_weights) == len(model.trainable_weights) > 4


def test_from_config_never_fetches_weights(tmp_path, monkeypatch):
    # An empty Keras cache and no network: building with "imagenet" would fail.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    config = TransferClassifier("mobilenet_v2", 3, weights=None).get_config()
    config["weights"] = "imagenet"
    rebuilt = TransferClassifier.from_config(config)
    assert rebuilt.weights_source == "imagenet" and rebuilt.pretrained


def test_saved_model_reloads_with_identical_predictions_and_trainability(tmp_path):
    model = TransferClassifier("mobilenet_v2", 3, weights=None, head=(8,))
    unfreeze_last(model, 10)
    loaded = assert_round_trip(model, IMAGES, tmp_path)
    assert [w.path for w in loaded.trainable_weights] == [w.path for w in model.trainable_weights]


def test_transferred_backbone_round_trips_and_counts_as_pretrained(tmp_path):
    cnn = BaselineCNN(5, filters=(8, 16), head=(8,))
    model = build_transfer_model(cnn.backbone, 2, head=(8,))
    assert model.weights_source == TRANSFERRED and model.pretrained
    assert model.backbone is not cnn.backbone  # a copy: the source model is untouched
    for a, b in zip(model.backbone.weights, cnn.backbone.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    loaded = assert_round_trip(model, IMAGES, tmp_path)
    assert loaded.weights_source == TRANSFERRED and loaded.get_config()["freeze"] is True


def test_baseline_cnn_round_trips(tmp_path):
    cnn = BaselineCNN(3, filters=(8, 16), head=(8,), residual=True)
    assert cnn.backbone.name == "features" and cnn.backbone_input is cnn.inputs[0]
    assert cnn.get_config()["freeze"] is False and not cnn.pretrained
    assert_round_trip(cnn, IMAGES, tmp_path)


def test_bad_arguments_are_refused():
    with pytest.raises(ConfigurationError, match="num_classes"):
        TransferClassifier("mobilenet_v2", 1, weights=None)
    with pytest.raises(ConfigurationError, match="dropout"):
        BaselineCNN(3, dropout=1.0)
    with pytest.raises(ConfigurationError, match="input_shape"):
        BaselineCNN(3, input_shape=(32, 32))


def test_run_records_what_the_model_says_about_its_weights():
    data = make_synthetic_dataset(3, per_class=10, image_size=32, test_per_class=2, seed=0)
    run = train(TransferClassifier("mobilenet_v2", 3, weights=None, head=(8,)), data, epochs=1,
                verbose=0)
    assert run.config["classifier"]["class"] == "TransferClassifier"
    assert run.config["backbone"]["weights"] is None and not run.config["backbone"]["pretrained"]
    # A random-initialised MobileNetV2 is not called transfer learning in the report.
    assert "random initial weights" in step(run, {}) and "transfer" not in step(run, {}).lower()


def test_feature_map_layers_of_a_backbone_built_for_any_size():
    from transferkit.reporting._parts import depth_layers

    inner = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a")(inner)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(8, 3, padding="same", name="conv_b")(x)
    x = keras.layers.ReLU(name="relu_b")(x)
    model = build_transfer_model(keras.Model(inner, x, name="anysize"), 2, head=())
    layers = depth_layers(model)
    assert layers and set(layers) <= {"conv_a", "conv_b", "relu_b"}
