"""Grad-CAM: its contract, and sanity checks that a broken map would fail."""

import keras
import numpy as np
import pytest

from transferkit.errors import ConfigurationError, DataError, UnknownNameError
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.gradcam import grad_cam, grad_cam_and_probabilities, target_layer

COLOURS = ((210, 40, 40), (40, 190, 40), (40, 40, 210), (210, 200, 40))


def _objects(n: int, seed: int, *, left: bool = False):
    """Grey noise with one 8x8 square, its colour the class (red, green, blue, yellow), in 32x32.

    Four classes, not two: with two, a network may call one class "no square of the
    other colour", and a map of an absence has nothing to find.
    Returns the images, labels and each square's mask; ``left``: squares in the left half.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(110, 25, (n, 32, 32, 3))
    y = rng.integers(0, len(COLOURS), n)
    boxes = np.zeros((n, 32, 32), bool)
    for i in range(n):
        r, c = rng.integers(0, 24), rng.integers(0, 8 if left else 24)
        x[i, r:r + 8, c:c + 8] = COLOURS[y[i]]
        boxes[i, r:r + 8, c:c + 8] = True
    return np.clip(x, 0, 255).astype(np.uint8), y, boxes


@pytest.fixture(scope="session")
def trained():
    """A two-block CNN trained briefly to tell the squares' colours wherever they are."""
    keras.utils.set_random_seed(0)
    x, y, _ = _objects(384, 0)
    model = build_baseline_cnn(len(COLOURS), input_shape=(32, 32, 3), filters=(8, 16), head=())
    model.compile(keras.optimizers.Adam(4e-3), "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return model, *_objects(32, 1, left=True)


def _correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of maps."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)


def _localised(maps: np.ndarray, boxes: np.ndarray) -> float:
    """Share of maps at least twice as strong on the square as off it."""
    return float(np.mean([m[b].mean() > 2 * m[~b].mean() for m, b in zip(maps, boxes)]))


def test_the_map_finds_the_object_follows_it_when_flipped_and_needs_the_trained_weights(trained):
    model, x, y, boxes = trained
    maps, probs = grad_cam_and_probabilities(model, x)
    assert (probs.argmax(1) == y).mean() >= 0.9  # trained, not random: the checks mean something
    assert _localised(maps, boxes) >= 0.8
    # The squares are all in the left half: mirrored, they move right, and so must the map.
    mirrored = grad_cam(model, x[:, :, ::-1], y)
    assert np.median(_correlation(mirrored, maps[:, :, ::-1])) > 0.8
    assert _localised(mirrored, boxes[:, :, ::-1]) >= 0.8
    # Adebayo et al.'s sanity check: the same network with fresh random weights gives other
    # maps, which no longer find the squares.
    keras.utils.set_random_seed(1)
    randomised = type(model).from_config(model.get_config())
    random_maps = grad_cam(randomised, x, y)
    assert np.median(_correlation(random_maps, maps)) < 0.5
    assert _localised(random_maps, boxes) < 0.5


def _stand_in_transfer(input_shape):
    """A 1-conv backbone fed 96 px: a transfer model that resizes inside, as MobileNetV2's does."""
    inp = keras.Input((None, None, 3))
    features = keras.layers.Conv2D(4, 3, strides=4, name="conv")(keras.layers.Rescaling(1 / 255)(inp))
    return build_transfer_model(keras.Model(inp, features, name="tiny"), 3,
                                input_shape=input_shape, image_size=96, head=())


def test_maps_are_float_in_0_1_at_the_input_size_for_each_class_choice(raw_images):
    cnn = build_baseline_cnn(3, input_shape=(32, 32, 3), filters=(8, 16))
    transfer = _stand_in_transfer((32, 32, 3))
    assert transfer.resize_size == 96  # 32 -> 96 px inside: the map comes back at 32 px
    assert target_layer(cnn) == "block2_dropout" and target_layer(transfer) == "conv"
    wide = np.random.default_rng(1).integers(0, 256, (5, 24, 40, 3)).astype(np.uint8)
    for model, images in ((cnn, raw_images), (transfer, raw_images), (_stand_in_transfer((24, 40, 3)), wide)):
        maps, probs = grad_cam_and_probabilities(model, images, batch_size=3)  # 2 chunks
        assert maps.shape == images.shape[:3] and maps.dtype == np.float32
        assert maps.min() >= 0 and maps.max() <= 1
        np.testing.assert_allclose(probs, model.predict(images, verbose=0), atol=1e-5)
        predicted = probs.argmax(1)
        np.testing.assert_allclose(grad_cam(model, images, predicted), maps, atol=1e-5)
        other = (predicted + 1) % 3
        by_class = grad_cam(model, images, other.tolist())
        np.testing.assert_allclose(grad_cam(model, images[:1], int(other[0]))[0], by_class[0],
                                   atol=1e-5)
    with pytest.raises(ConfigurationError, match=r"class_index must be in 0..2"):
        grad_cam(cnn, raw_images, 3)
    with pytest.raises(ConfigurationError, match="one per image"):
        grad_cam(cnn, raw_images, [0, 1])
    with pytest.raises(DataError):
        grad_cam(cnn, wide)
    with pytest.raises(UnknownNameError, match="block2_conv2"):
        grad_cam(cnn, raw_images, layer="block2_conv")


def test_a_model_without_convolutions_gets_one_clear_error(raw_images):
    dense = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(3, activation="softmax")], name="dense")
    inp = keras.Input((32, 32, 3))
    pooling = keras.Model(inp, keras.layers.AveragePooling2D(4)(inp), name="pooling")
    for model in (dense, build_transfer_model(pooling, 3, head=())):
        with pytest.raises(ConfigurationError, match="needs a convolutional layer"):
            grad_cam(model, raw_images)
    plain = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Conv2D(2, 3),
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    with pytest.raises(ConfigurationError, match="needs a transferkit classifier"):
        grad_cam(plain, raw_images)
