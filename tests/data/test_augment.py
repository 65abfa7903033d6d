"""Crop + flip in NumPy, and the batches that carry it to model.fit."""

import numpy as np
import pytest

from transferkit.data.augment import AugmentedBatches, crop_flip
from transferkit.errors import ConfigurationError, DataError


def _ramp(n=6, size=8):
    # Every pixel distinct, so a crop's offset and a flip can be read back from the output.
    return (np.arange(n * size * size * 3) % 251).astype(np.uint8).reshape(n, size, size, 3)


def test_crop_flip_keeps_shape_and_dtype_and_is_seeded():
    x = _ramp()
    a, b = crop_flip(x, np.random.default_rng(3)), crop_flip(x, np.random.default_rng(3))
    assert a.shape == x.shape and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, crop_flip(x, np.random.default_rng(4)))


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
