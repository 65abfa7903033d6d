import keras
import keras.applications as apps
import numpy as np
import pytest
from conftest import MOBILENET_FILE, requires_imagenet

from transferkit.errors import ConfigurationError, UnknownNameError, WeightsNotFoundError
from transferkit.models.backbones import BackbonePreprocessing, build_backbone
from transferkit.models.registry import (
    BACKBONES,
    get_backbone_spec,
    list_backbones,
    weights_cache_path,
)

REQUIRED = {"mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large", "resnet50", "vgg16",
            "inception_v3", "efficientnet_b0", "densenet121", "convnext_tiny"}


def test_registry_has_required_backbones_and_describes_them():
    assert set(BACKBONES) >= REQUIRED
    rows = {r["name"]: r for r in list_backbones()}
    assert rows["mobilenet_v2"]["upscale_size"] == 96
    assert rows["inception_v3"]["min_size"] == 75
    assert all(r["purpose"] and r["feature_layer"] for r in rows.values())


def test_lookup_accepts_keras_spelling_and_suggests_close_names():
    assert get_backbone_spec("MobileNetV2").name == "mobilenet_v2"
    assert get_backbone_spec("resnet-50".replace("-", "")).name == "resnet50"
    with pytest.raises(UnknownNameError, match="Did you mean 'mobilenet_v2'"):
        get_backbone_spec("mobilenet_v22")


@pytest.mark.parametrize(
    "name, reference",
    [("mobilenet_v2", apps.mobilenet_v2.preprocess_input), ("resnet50", apps.resnet50.preprocess_input),
     ("vgg16", apps.vgg16.preprocess_input), ("inception_v3", apps.inception_v3.preprocess_input),
     ("densenet121", apps.densenet.preprocess_input), ("efficientnet_b0", apps.efficientnet.preprocess_input),
     ("convnext_tiny", apps.convnext.preprocess_input)],
)
def test_preprocessing_layer_matches_keras_preprocess_input(name, reference):
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype("float32")
    layer = BackbonePreprocessing(get_backbone_spec(name).preprocessing)
    np.testing.assert_allclose(np.asarray(layer(x)), reference(x.copy()), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["tf", "caffe", "torch", "none"])
def test_preprocessing_layer_is_channels_last_and_leaves_its_input_alone(mode):
    x = np.random.default_rng(1).integers(0, 256, (2, 4, 4, 3)).astype("float32")
    tensor = keras.ops.convert_to_tensor(x)
    expected = np.asarray(BackbonePreprocessing(mode)(x))
    before = keras.config.image_data_format()
    keras.config.set_image_data_format("channels_first")  # a global setting it must ignore
    try:
        np.testing.assert_array_equal(np.asarray(BackbonePreprocessing(mode)(tensor)), expected)
    finally:
        keras.config.set_image_data_format(before)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(tensor), x)


def test_preprocessing_layer_serialises_and_rejects_unknown_modes():
    layer = BackbonePreprocessing("caffe", name="pre")
    clone = keras.layers.deserialize(keras.layers.serialize(layer))
    assert isinstance(clone, BackbonePreprocessing) and clone.mode == "caffe"
    with pytest.raises(ConfigurationError, match="mode"):
        BackbonePreprocessing("imagenet")


def test_build_backbone_checks_size_and_weights_path(tmp_path):
    with pytest.raises(ConfigurationError, match="at least 75"):
        build_backbone("inception_v3", image_size=64, weights=None)
    with pytest.raises(WeightsNotFoundError, match="does not exist"):
        build_backbone("mobilenet_v2", image_size=96, weights=tmp_path / "nope.h5")


def test_missing_imagenet_weights_name_the_file_and_folder(monkeypatch):
    from keras.src.utils import file_utils

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://example: [Errno -3] name resolution")

    monkeypatch.setattr(file_utils, "get_file", offline)
    with pytest.raises(WeightsNotFoundError) as err:
        build_backbone("resnet50", image_size=96)
    text = str(err.value)
    target = weights_cache_path("resnet50", 96)
    assert target.name == "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
    assert target.name in text and str(target.parent) in text


def test_mobilenet_weight_file_names_follow_input_size():
    spec = get_backbone_spec("mobilenet_v2")
    assert spec.weights_filename(96).endswith("_1.0_96_no_top.h5")
    assert spec.weights_filename(100).endswith("_1.0_224_no_top.h5")  # Keras falls back to 224


@requires_imagenet
def test_imagenet_weights_load_offline_from_the_keras_cache():
    assert weights_cache_path("mobilenet_v2", 96).exists()
    pretrained = build_backbone("mobilenet_v2", image_size=96, weights="imagenet")
    reference = build_backbone("mobilenet_v2", image_size=96, weights=MOBILENET_FILE)
    random = build_backbone("mobilenet_v2", image_size=96, weights=None)
    for a, b in zip(pretrained.weights, reference.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    variances = np.concatenate([x.moving_variance.numpy() for x in pretrained.layers
                                if isinstance(x, keras.layers.BatchNormalization)])
    assert variances.mean() > 2.0  # trained statistics (3.18 per SOURCES.md), init is 1.0
    assert not np.allclose(pretrained.get_layer("Conv1").kernel.numpy(),
                           random.get_layer("Conv1").kernel.numpy())


_STALLED_DOWNLOAD = r'''
import os, sys, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
from transferkit.models.backbones import build_backbone
from transferkit.errors import WeightsNotFoundError
start = time.perf_counter()
try:
    build_backbone("resnet50", image_size=64, download_timeout=2)
except WeightsNotFoundError as exc:
    print(f"SECONDS {time.perf_counter() - start:.1f}")
    print(f"MESSAGE {exc}")
    sys.exit(0)
sys.exit(1)
'''


@pytest.mark.backend_neutral
def test_stalled_download_fails_within_the_timeout(tmp_path):
    """Offline with a network that answers nothing: the weights error comes in seconds.

    The weights request goes through a local proxy that accepts connections
    and never replies, the worst case for a hanging download.
    """
    import os
    import socket
    import subprocess
    import sys

    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(8)
    proxy = f"http://127.0.0.1:{stalled.getsockname()[1]}"
    home = tmp_path / "keras-home"
    (home / "models").mkdir(parents=True)
    env = {**os.environ, "KERAS_HOME": str(home), "https_proxy": proxy, "HTTPS_PROXY": proxy,
           "http_proxy": proxy, "HTTP_PROXY": proxy}
    try:
        done = subprocess.run([sys.executable, "-c", _STALLED_DOWNLOAD], env=env, timeout=120,
                              capture_output=True, text=True)
    finally:
        stalled.close()
    assert done.returncode == 0, done.stdout + done.stderr
    seconds = float(done.stdout.split("SECONDS ")[1].split()[0])
    message = done.stdout.split("MESSAGE ")[1]
    print(f"weights error after {seconds} s")
    # 2 s socket timeouts, a few tries at most: a few seconds on a quiet machine (24 s was
    # seen with JAX compiling beside it on 2 busy cores); a hang runs into the 120 s limit.
    assert seconds < 60
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert str(home / "models") in message
