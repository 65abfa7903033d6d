import numpy as np
import pytest

from transferkit.errors import DataError, UnknownNameError
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.features import (
    default_feature_layers,
    extract_feature_maps,
    extract_features,
)


def test_feature_maps_inside_a_transfer_model(raw_images):
    model = build_transfer_model("mobilenet_v2", 4, weights=None)
    assert default_feature_layers(model) == ["block_6_expand_relu"]
    maps = extract_feature_maps(model, raw_images, ["block_6_expand_relu", "Conv1", "pool"])
    assert maps["block_6_expand_relu"].shape == (4, 12, 12, 192)  # 96 px input, stride 8
    assert maps["Conv1"].shape == (4, 48, 48, 32)
    assert maps["pool"].shape == (4, 1280)


def test_feature_maps_of_a_plain_cnn_default_to_spaced_conv_layers(raw_images):
    cnn = build_baseline_cnn(4)
    layers = default_feature_layers(cnn)
    assert layers == ["block1_conv1", "block2_conv1", "block3_conv2"]
    maps = extract_feature_maps(cnn, raw_images)
    assert [m.shape for m in maps.values()] == [(4, 32, 32, 32), (4, 16, 16, 64), (4, 8, 8, 128)]


def test_feature_map_errors(raw_images):
    cnn = build_baseline_cnn(4)
    with pytest.raises(UnknownNameError, match="block1_conv1"):
        extract_feature_maps(cnn, raw_images, "block1_conv")
    with pytest.raises(DataError, match="uint8"):
        extract_feature_maps(cnn, raw_images.astype("float32"))
    with pytest.raises(DataError, match="shape"):
        extract_feature_maps(cnn, raw_images[:, :20])


def test_extract_features_matches_pool_layer(tiny):
    cnn = build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(8,))
    feats = extract_features(cnn, tiny, "test", verbose=0)
    maps = extract_feature_maps(cnn, tiny.x_test, "pool")
    np.testing.assert_allclose(feats, maps["pool"], atol=1e-6)


def test_flipped_features_are_the_mirror_images_features(tiny):
    from transferkit.data.splits import DataSplits

    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8,))
    mirrored = DataSplits(tiny.x_train[:, :, ::-1].copy(), tiny.y_train, tiny.x_val, tiny.y_val,
                          tiny.x_test, tiny.y_test, tiny.class_names)
    np.testing.assert_allclose(extract_features(cnn, tiny, "train", flip=True, verbose=0),
                               extract_features(cnn, mirrored, "train", verbose=0), atol=1e-5)


def test_feature_progress_says_what_it_extracts(tiny, capsys):
    cnn = build_baseline_cnn(3, input_shape=tiny.image_shape, filters=(8,))
    extract_features(cnn, tiny, "test", verbose=2)
    extract_features(cnn, tiny, "train", verbose=2, flip=True)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Extracting features (test split): 24/24 images - ")
    assert lines[1].startswith("Extracting features (train split, mirrored): ")
