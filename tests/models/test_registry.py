from dataclasses import replace

import pytest
from conftest import MOBILENET_FILE, MOBILENET_V1_FILE

from transferkit import BACKBONES, build_transfer_model, get_backbone_spec, register_backbone
from transferkit.errors import ConfigurationError
from transferkit.models.backbones import build_backbone, check_weights_fit
from transferkit.models.registry import identify_weights_file, unregister_backbone

needs_both = pytest.mark.skipif(not (MOBILENET_FILE.exists() and MOBILENET_V1_FILE.exists()),
                                reason="the shared ImageNet weights files are absent")


def test_register_backbone_makes_a_name_work_everywhere():
    spec = replace(get_backbone_spec("mobilenet_v1_025"), name="mobilenet_v1_050",
                   constructor_kwargs=(("alpha", 0.5),))
    register_backbone(spec)
    try:
        model = build_transfer_model("mobilenet_v1_050", 3, weights=None)
        assert model.get_layer("mobilenet_v1_050").count_params() > 2 * build_backbone(
            "mobilenet_v1_025", image_size=128, weights=None).count_params()
        with pytest.raises(ConfigurationError, match="registered already"):
            register_backbone(spec)
        register_backbone(spec, overwrite=True)
    finally:
        unregister_backbone("mobilenet_v1_050")
    assert "mobilenet_v1_050" not in BACKBONES


def test_register_backbone_rejects_inconsistent_specs():
    base = get_backbone_spec("mobilenet_v2")
    with pytest.raises(ConfigurationError, match="preprocessing"):
        register_backbone(replace(base, name="x1", preprocessing="bgr"))
    with pytest.raises(ConfigurationError, match="pretrained_sizes"):
        register_backbone(replace(base, name="x2", pretrained_sizes=(16,)))
    with pytest.raises(ConfigurationError, match="BackboneSpec"):
        register_backbone({"name": "x3"})


def test_mobilenet_v1_025_is_the_narrow_network():
    base = build_backbone("mobilenet_v1_025", image_size=128, weights=None)
    assert 0.15e6 < base.count_params() < 0.3e6  # 0.2 M parameters at width 0.25
    assert base.get_layer(get_backbone_spec("mobilenet_v1_025").feature_layer) is not None


def test_weights_files_are_recognised_by_name():
    assert identify_weights_file("mobilenet_2_5_160_tf_no_top.h5") == "mobilenet_v1_025"
    assert identify_weights_file(
        "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5") == "mobilenet_v2"
    assert identify_weights_file("resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5") == "resnet50"
    assert identify_weights_file("my_weights.h5") is None  # absent and unknown


@needs_both
def test_weights_files_are_recognised_by_content(tmp_path):
    renamed = tmp_path / "weights.h5"
    renamed.symlink_to(MOBILENET_V1_FILE)
    assert identify_weights_file(renamed) == "mobilenet_v1_025"
    with pytest.raises(ConfigurationError, match="holds mobilenet_v1_025 weights, not mobilenet_v2"):
        check_weights_fit(renamed, "mobilenet_v2")
    check_weights_fit(MOBILENET_FILE, "mobilenet_v2")  # its own file passes


@needs_both
def test_a_weights_file_for_another_network_is_refused_before_building():
    with pytest.raises(ConfigurationError, match="mobilenet_v2 weights, not mobilenet_v1_025"):
        build_transfer_model("mobilenet_v1_025", 10, weights=str(MOBILENET_FILE))


@pytest.mark.skipif(not MOBILENET_V1_FILE.exists(), reason="MobileNet v1 weights absent")
def test_mobilenet_v1_025_loads_its_imagenet_weights_offline():
    model = build_transfer_model("mobilenet_v1_025", 10, weights="imagenet")
    assert model.get_layer("mobilenet_v1_025").input_shape[1:3] == (128, 128)


# Each registered backbone against keras' own preprocessing function for it.
_KERAS_PREPROCESS = {
    "mobilenet_v2": "mobilenet_v2", "mobilenet_v1_025": "mobilenet",
    "mobilenet_v3_small": "mobilenet_v3", "mobilenet_v3_large": "mobilenet_v3",
    "resnet50": "resnet50", "vgg16": "vgg16", "inception_v3": "inception_v3",
    "efficientnet_b0": "efficientnet", "densenet121": "densenet", "convnext_tiny": "convnext",
}


# Building is Keras' work (its applications build on every backend): once, on TensorFlow.
# The 10 builds took 109 s of CI's JAX suite. The preprocessing is transferkit's own
# layer, so it is compared on every backend.
@pytest.mark.backend_neutral
@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registered_backbone_builds_small_with_its_feature_layer(name):
    spec = get_backbone_spec(name)
    base = build_backbone(name, image_size=spec.min_size, weights=None)
    assert base.input_shape[1:3] == (spec.min_size, spec.min_size)
    assert base.get_layer(spec.feature_layer) is not None  # the feature-map layer exists


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_registered_backbone_preprocesses_like_keras(name):
    import keras
    import numpy as np

    from transferkit.models.backbones import BackbonePreprocessing

    spec = get_backbone_spec(name)
    module = getattr(keras.applications, _KERAS_PREPROCESS[name])
    x = np.random.default_rng(0).integers(0, 256, (2, 5, 5, 3)).astype("float32")
    ours = np.asarray(BackbonePreprocessing(spec.preprocessing)(x))
    np.testing.assert_allclose(ours, module.preprocess_input(x.copy()), rtol=1e-5, atol=1e-4)
