"""Batches of streamed images or memory-mapped arrays for ``model.fit`` and ``model.predict``."""

from __future__ import annotations

import math
from concurrent.futures import Future, ThreadPoolExecutor

import keras
import numpy as np

from transferkit._diskarray import release
from transferkit.data.stream import ImageFiles


class StreamBatches(keras.utils.PyDataset):
    """Batches ``(uint8 images, labels)`` of an :class:`ImageFiles` (or any array), for fit/predict.

    The next batch decodes on a background thread while this one is used, so at
    most two batches are in memory. ``shuffle`` draws a new order every epoch
    (seeded); without it, batches follow the split's order (what predict needs).

    Args:
        x: Images: an :class:`ImageFiles`, or an array (a memory-mapped one: features).
        y: Labels, or None (batches are then images only, for ``predict``).
        batch_size: Images per batch.
        shuffle: Reshuffle every epoch.
        seed: Seed of the order.
        flip: Mirror every image horizontally (features of the mirror images).

    Example:
        >>> batches = StreamBatches(data.x_train, data.y_train, 64, shuffle=True)  # doctest: +SKIP
        >>> model.fit(batches, epochs=3)  # doctest: +SKIP
    """

    def __init__(self, x, y=None, batch_size: int = 64, *, shuffle: bool = False,
                 seed: int = 0, flip: bool = False) -> None:
        super().__init__()
        self.flip = flip
        self.x, self.y = x, None if y is None else np.asarray(y)
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(len(x)) if shuffle else np.arange(len(x))
        self._ahead: tuple[int, Future] | None = None
        self._loader = ThreadPoolExecutor(1, thread_name_prefix="transferkit-batch")

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(len(self.x))
            self._ahead = None
        release(self.x)

    def _load(self, index: int):
        idx = np.sort(self._order[index * self.batch_size:(index + 1) * self.batch_size])
        images = self.x[idx]
        if not isinstance(self.x, ImageFiles):  # a memory-mapped array: the rows, in memory
            images = np.asarray(images, np.float32 if images.dtype == np.float16 else None)
        if self.flip:
            images = images[:, :, ::-1]
        return images if self.y is None else (images, self.y[idx])

    def __getitem__(self, index: int):
        ahead, self._ahead = self._ahead, None
        batch = ahead[1].result() if ahead is not None and ahead[0] == index else self._load(index)
        if index + 1 < len(self):
            self._ahead = (index + 1, self._loader.submit(self._load, index + 1))
        return batch
