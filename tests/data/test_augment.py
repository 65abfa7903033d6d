"""Crop + flip in NumPy, photo augmentation, and the batches that carry them to model.fit."""

import numpy as np
import pytest

from transferkit.data.augment import (
    PHOTO_RATIO,
    PHOTO_SCALE,
    AugmentedBatches,
    check_augment,
    colour_jitter,
    crop_boxes,
    crop_flip,
    photo_augment,
    random_resized_crop,
)
from transferkit.errors import ConfigurationError, DataError


def _ramp(n=6, size=8):
    # Every pixel distinct, so a crop's offset and a flip can be read back from the output.
    return (np.arange(n * size * size * 3) % 251).astype(np.uint8).reshape(n, size, size, 3)


def _assert_shape_dtype_and_seeded(augment, x):
    """Same shape and dtype; the same seed gives the same batch, another seed another."""
    a, b = augment(x, np.random.default_rng(3)), augment(x, np.random.default_rng(3))
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, augment(x, np.random.default_rng(4)))


def test_crop_flip_keeps_shape_and_dtype_and_is_seeded():
    _assert_shape_dtype_and_seeded(crop_flip, _ramp())


def test_every_output_is_a_window_of_the_reflect_padded_image_maybe_mirrored():
    x, pad = _ramp(n=20), 2
    out = crop_flip(x, np.random.default_rng(0), pad=pad)
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, r:r + 8, c:c + 8] for r in range(2 * pad + 1) for c in range(2 * pad + 1)]
        plain = any(np.array_equal(out[i], w) for w in windows)
        mirrored = any(np.array_equal(out[i], w[:, ::-1]) for w in windows)
        assert plain or mirrored
        flips += mirrored and not plain
    assert 0 < flips < len(x)  # about half are flipped


def test_no_padding_and_no_flip_is_the_identity():
    x = _ramp()
    np.testing.assert_array_equal(crop_flip(x, np.random.default_rng(0), pad=0, flip=False), x)


def test_crop_flip_rejects_bad_input():
    with pytest.raises(DataError, match="batches"):
        crop_flip(np.zeros((8, 8, 3), np.uint8), np.random.default_rng(0))
    with pytest.raises(ConfigurationError, match="pad"):
        crop_flip(_ramp(), np.random.default_rng(0), pad=8)


def test_batches_cover_each_image_once_per_epoch_and_keep_labels_aligned():
    n = 50
    x = np.repeat(np.arange(n, dtype=np.uint8)[:, None, None, None], 4, axis=1)
    x = np.repeat(np.repeat(x, 4, axis=2), 3, axis=3)  # image i is filled with the value i
    batches = AugmentedBatches(x, np.arange(n), batch_size=16, seed=0)
    assert len(batches) == 4
    orders = []
    for _ in range(2):
        seen = []
        for i in range(len(batches)):
            images, labels = batches[i]
            assert images.dtype == np.uint8
            np.testing.assert_array_equal(images[:, 0, 0, 0], labels)  # constant images
            seen += labels.tolist()
        assert sorted(seen) == list(range(n))
        orders.append(seen)
        batches.on_epoch_end()
    assert orders[0] != orders[1]  # reshuffled


def test_batches_refuse_mismatched_labels():
    with pytest.raises(DataError, match="labels"):
        AugmentedBatches(np.zeros((4, 8, 8, 3), np.uint8), np.zeros(3), batch_size=2)


# Photo augmentation: random-resized crop, flip, colour jitter.


def _photos(n=8, size=32, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def test_photo_augment_keeps_shape_and_dtype_and_is_seeded():
    x = _photos()
    _assert_shape_dtype_and_seeded(photo_augment, x)
    grey = photo_augment(x[..., :1], np.random.default_rng(0))  # one channel works too
    assert grey.shape == (8, 32, 32, 1) and grey.dtype == np.uint8


def test_crop_boxes_stay_inside_and_vary_in_area_and_aspect_ratio():
    boxes = crop_boxes(2000, 64, 48, np.random.default_rng(0))
    left, top, right, bottom = boxes.T
    assert (left >= 0).all() and (top >= 0).all() and (right <= 48).all() and (bottom <= 64).all()
    area = (right - left) * (bottom - top) / (64 * 48)
    ratio = (right - left) / (bottom - top)
    assert area.min() >= PHOTO_SCALE[0] - 1e-9 and area.max() <= 1 + 1e-9
    assert area.min() < 0.4 and area.max() > 0.9 and area.std() > 0.12  # really varies
    assert ratio.min() >= PHOTO_RATIO[0] - 1e-9 and ratio.max() <= PHOTO_RATIO[1] + 1e-9
    assert ratio.min() < 0.8 and ratio.max() > 1.25


def test_random_resized_crop_magnifies_each_image_by_its_box():
    # Pixel value = 2 x column: the value range along an output row is twice the box's
    # width, so the crop's scale can be read back from the output.
    x = np.broadcast_to((2 * np.arange(128)).astype(np.uint8)[None, None, :, None],
                        (32, 128, 128, 3)).copy()
    out = random_resized_crop(x, np.random.default_rng(5))
    boxes = crop_boxes(32, 128, 128, np.random.default_rng(5))  # the boxes it drew first
    spread = out[:, 64, -1, 0].astype(float) - out[:, 64, 0, 0]
    widths = boxes[:, 2] - boxes[:, 0]
    np.testing.assert_allclose(spread, 2 * widths, atol=6)
    assert widths.max() - widths.min() > 30


def test_colour_jitter_is_bounded_by_its_factors():
    # Mid-range pixels: no clipping, so the bounds are exact (see colour_jitter).
    x = np.random.default_rng(1).integers(90, 160, (200, 8, 8, 3), dtype=np.uint8)
    out = colour_jitter(x, np.random.default_rng(2)).astype(np.float64)
    xf = x.astype(np.float64)
    luma = np.array([0.299, 0.587, 0.114])
    grey_in, grey_out = xf @ luma, out @ luma
    brightness = grey_out.mean(axis=(1, 2)) / grey_in.mean(axis=(1, 2))  # exactly b
    spread = grey_out.std(axis=(1, 2)) / grey_in.std(axis=(1, 2))  # b * contrast
    colour = (np.abs(out - grey_out[..., None]).mean(axis=(1, 2, 3))
              / np.abs(xf - grey_in[..., None]).mean(axis=(1, 2, 3)))  # b * contrast * saturation
    tol = 0.02  # rounding to uint8
    assert 0.8 - tol <= brightness.min() and brightness.max() <= 1.2 + tol
    assert 0.64 - tol <= spread.min() and spread.max() <= 1.44 + tol
    assert 0.512 - tol <= colour.min() and colour.max() <= 1.728 + tol
    assert brightness.std() > 0.05 and colour.std() > 0.1  # and it does vary
    np.testing.assert_array_equal(colour_jitter(x, np.random.default_rng(0), strength=0), x)
    assert colour_jitter(np.full((2, 4, 4, 3), 250, np.uint8), np.random.default_rng(0)).max() <= 255


def test_photo_augment_rejects_what_it_cannot_handle():
    with pytest.raises(DataError, match="uint8"):
        photo_augment(_photos().astype(np.float32), np.random.default_rng(0))
    with pytest.raises(DataError, match="uint8"):
        photo_augment(np.zeros((2, 8, 8, 4), np.uint8), np.random.default_rng(0))
    with pytest.raises(ConfigurationError, match="scale"):
        crop_boxes(2, 8, 8, np.random.default_rng(0), scale=(0.5, 1.5))
    with pytest.raises(ConfigurationError, match="strength"):
        colour_jitter(_photos(), np.random.default_rng(0), strength=1.0)


def test_batches_take_photo_and_refuse_unknown_augmentations():
    x, y = _photos(n=10), np.arange(10) % 2
    first = AugmentedBatches(x, y, batch_size=4, augment="photo", seed=0)[0]
    again = AugmentedBatches(x, y, batch_size=4, augment="photo", seed=0)[0]
    assert first[0].shape == (4, 32, 32, 3) and first[0].dtype == np.uint8
    np.testing.assert_array_equal(first[0], again[0])
    plain = x[np.sort(np.random.default_rng(0).permutation(10)[:4])]
    assert not np.array_equal(first[0], plain)  # augmented
    for bad in ("crop", 1, None):
        with pytest.raises(ConfigurationError, match="augment"):
            AugmentedBatches(x, y, batch_size=4, augment=bad)
    assert [check_augment(a) for a in (True, False, "flip", "photo")] == [True, False, "flip", "photo"]
