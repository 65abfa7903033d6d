"""The batch streams read each pixel once, yet give the batches of the straightforward code, bit for bit.

crop_flip, AugmentedBatches and ShiftedViews gather crops straight from their
sources (no padded copy, no batch copy, no flip copy). The references here are
the earlier, obvious implementations (pad, crop the copy, flip the copy): the
same seed must give the same batches and leave the generator in the same state.
"""

import numpy as np
import pytest

from transferkit.data.augment import AugmentedBatches, crop_flip
from transferkit.training.cached_prefix import ShiftedViews


def reference_crop_flip(images, rng, *, pad=None, flip=True):
    n, h, w, _ = images.shape
    pad = max(1, min(h, w) // 8) if pad is None else int(pad)
    if pad:
        padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
        rows = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(h)[None]
        cols = rng.integers(0, 2 * pad + 1, n)[:, None] + np.arange(w)[None]
        out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    else:
        out = images.copy()
    if flip:
        flipped = rng.random(n) < 0.5
        out[flipped] = out[flipped][:, :, ::-1]
    return out


class ReferenceAugmentedBatches(AugmentedBatches):
    def __getitem__(self, index):
        idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        images = self.x[idx]
        if self.augment:
            images = reference_crop_flip(images, self._rng, pad=0 if self.augment == "flip" else None)
        return images, self.y[idx]


class ReferenceShiftedViews(ShiftedViews):
    def __getitem__(self, index):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        pick = self.rng.integers(0, len(self.views), len(idx))
        batch = np.empty((len(idx), *self.views[0].shape[1:]), np.float32)
        for v, view in enumerate(self.views):
            batch[pick == v] = view[idx[pick == v]]
        if self.shift:
            batch = reference_crop_flip(batch, self.rng, pad=self.shift, flip=False)
        return batch, self.labels[idx]


def _same_epochs(new, reference, epochs=2):
    for _ in range(epochs):
        for i in range(len(new)):
            (x, y), (x_ref, y_ref) = new[i], reference[i]
            assert x.dtype == x_ref.dtype and x.shape == x_ref.shape
            np.testing.assert_array_equal(x, x_ref)
            np.testing.assert_array_equal(y, y_ref)
        new.on_epoch_end()
        reference.on_epoch_end()


@pytest.mark.parametrize("shape", [(7, 32, 32, 3), (5, 9, 6, 1), (4, 3, 5, 2)])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float16])
def test_crop_flip_matches_pad_then_crop(shape, dtype):
    images = np.random.default_rng(3).integers(0, 256, shape).astype(dtype)
    pads = [None, *range(min(shape[1:3]))]
    for seed, (pad, flip) in enumerate((p, f) for p in pads for f in (True, False)):
        rng, rng_ref = np.random.default_rng(seed), np.random.default_rng(seed)
        out = crop_flip(images, rng, pad=pad, flip=flip)
        expected = reference_crop_flip(images, rng_ref, pad=pad, flip=flip)
        assert out.dtype == expected.dtype
        np.testing.assert_array_equal(out, expected)
        assert rng.random() == rng_ref.random()  # the same draws: later batches match too
        assert not np.shares_memory(out, images)  # still a new array


@pytest.mark.parametrize("augment", [True, "flip", False])
def test_augmented_batches_match_the_copy_then_crop_batches(augment, tmp_path):
    x = np.random.default_rng(0).integers(0, 256, (70, 32, 32, 3), dtype=np.uint8)
    y = np.arange(70) % 10
    on_disk = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=x.shape)
    on_disk[:] = x
    for images in (x, on_disk):  # in memory and memory-mapped, as streamed splits are
        _same_epochs(AugmentedBatches(images, y, 16, augment=augment, seed=4),
                     ReferenceAugmentedBatches(images, y, 16, augment=augment, seed=4))


@pytest.mark.parametrize("shift", [0, 1, 2])
@pytest.mark.parametrize("n_views", [1, 2, 3])
def test_shifted_views_match_the_pad_then_crop_batches(shift, n_views):
    rng = np.random.default_rng(1)
    views = [rng.normal(size=(45, 6, 5, 4)).astype(np.float16) for _ in range(n_views)]
    labels = np.arange(45) % 7
    _same_epochs(ShiftedViews(views, labels, 16, shift=shift, seed=2),
                 ReferenceShiftedViews(views, labels, 16, shift=shift, seed=2))



def _aligned(shape, dtype=np.float32, align=64):
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(n + align, np.uint8)
    start = -raw.ctypes.data % align
    return raw[start:start + n].view(dtype).reshape(shape)


def test_tensorflow_may_keep_the_very_buffer_a_stream_hands_out():
    """Why the streams never reuse a batch's buffer (no ring): tf.data may still hold it.

    TensorFlow wraps a 64-byte-aligned NumPy array without copying it, and the
    pipeline (``_backend.fit_input``: two batches prefetched) builds the next
    batches while the model trains on this one. A stream reusing one buffer
    then hands the model overwritten batches. (Unaligned arrays are copied, which
    is why a ring can look safe in a quick try: large ``np.empty`` arrays are
    seldom 64-byte aligned.) If this ever fails, TensorFlow copies every batch.
    """
    import time

    import keras

    from transferkit import _backend

    if not _backend.is_tensorflow():
        pytest.skip("the tf.data pipeline is TensorFlow's")

    class OneBuffer(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.buffer = _aligned((8, 4, 4, 2))

        def __len__(self):
            return 12

        def __getitem__(self, index):
            self.buffer.fill(index)  # overwrites the batch handed out before
            return self.buffer, np.full(8, index)

    overwritten = 0
    for x, y in _backend.fit_input(OneBuffer()):
        time.sleep(0.01)  # a training step: the pipeline builds the next batches meanwhile
        overwritten += float(x.numpy().max()) != float(y.numpy()[0])
    assert overwritten > 0


def test_every_batch_is_a_new_array():
    """What makes the streams safe under that pipeline: no batch shares memory with another."""
    rng = np.random.default_rng(0)
    views = [rng.normal(size=(40, 6, 6, 4)).astype(np.float16) for _ in range(2)]
    images = rng.integers(0, 256, (40, 8, 8, 3), dtype=np.uint8)
    streams = [ShiftedViews(views, np.arange(40), 8, seed=0)]
    streams += [AugmentedBatches(images, np.arange(40), 8, augment=a, seed=0)
                for a in (True, "flip", False)]
    for stream in streams:
        batches = [stream[i][0] for i in range(len(stream))]
        assert not any(np.shares_memory(a, b) for i, a in enumerate(batches) for b in batches[:i])
        assert not any(np.shares_memory(b, source) for b in batches for source in [images, *views])
