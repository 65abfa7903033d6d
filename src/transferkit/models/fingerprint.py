"""What a frozen part of a model computes, as a key: the on-disk cache of its outputs.

The fast paths run a frozen part of a classifier (the backbone up to the
pooling layer, or the frozen prefix of a backbone being fine-tuned) over
every training image. :class:`OutputCache` looks each such output up in the
store of :mod:`transferkit._cache` before computing it, and stores it after.
Its key holds everything the output depends on:

- the part's weights (every variable it uses, trainable or not: BatchNorm
  statistics too), hashed in order;
- its structure: each layer's class and configuration (resize size and
  interpolation, preprocessing, where the cut is), without layer names, which
  Keras numbers per process;
- the layer whose output it is, the size images reach the backbone at, the
  data's resize mode where its provenance records one, and the view
  (``plain``, or ``flip`` for mirror images);
- the images: their bytes, shape and dtype, hashed once per array and call.

A changed pixel or weight gives another key, so stale outputs are never read.
Hashing costs about a second per 150 MB of images, once per split and call.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable

import keras
import numpy as np

from transferkit._cache import FeatureStore
from transferkit._progress import format_size
from transferkit._workers import current_role
from transferkit.data.stream import ImageFiles

logger = logging.getLogger("transferkit")

KEY_FORMAT = 1
"""Bumped when what a key covers changes, so older entries stop matching."""
_UNSTABLE_CONFIG = frozenset({"name", "trainable"})  # numbered per process / no effect on outputs


def _hasher():
    return hashlib.blake2b(digest_size=16)


def array_digest(array: np.ndarray) -> str:
    """A digest of an array's shape, dtype and bytes.

    Example:
        >>> a = np.zeros((2, 3), np.uint8)
        >>> array_digest(a) == array_digest(a.copy()), array_digest(a) == array_digest(a[:1])
        (True, False)
    """
    array = np.ascontiguousarray(array)
    h = _hasher()
    h.update(repr((array.shape, array.dtype.str)).encode())
    h.update(memoryview(array.reshape(-1).view(np.uint8)))
    return h.hexdigest()


def weights_digest(model: keras.Model) -> str:
    """A digest of every variable ``model`` uses (trainable or not), in order.

    Example:
        >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
        >>> before = weights_digest(m); _ = m.layers[0].bias.assign([1.0])
        >>> weights_digest(m) == before
        False
    """
    h = _hasher()
    for variable in model.weights:
        h.update(array_digest(keras.ops.convert_to_numpy(variable.value)).encode())
    return h.hexdigest()


def structure_digest(model: keras.Model) -> str:
    """A digest of the layers' classes and configurations, nested models walked into.

    Layer names are left out: Keras numbers them per process (``dense_3``), and
    the same network built twice must give the same digest.

    Example:
        >>> def net(units):
        ...     return keras.Sequential([keras.Input((2,)), keras.layers.Dense(units)])
        >>> structure_digest(net(3)) == structure_digest(net(3)) != structure_digest(net(4))
        True
    """
    h = _hasher()
    for layer in _layers(model):
        try:
            config = _stable(layer.get_config())
        except (NotImplementedError, TypeError):  # a layer without a config: its class only
            config = None
        h.update(json.dumps([type(layer).__qualname__, config], sort_keys=True,
                            default=lambda o: type(o).__qualname__).encode())
    return h.hexdigest()


def _layers(model: keras.Model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _stable(config):
    if isinstance(config, dict):
        return {k: _stable(v) for k, v in config.items() if k not in _UNSTABLE_CONFIG}
    if isinstance(config, (list, tuple)):
        return [_stable(v) for v in config]
    return config


class OutputCache:
    """A frozen part's outputs, read from the on-disk cache or computed and written to it.

    Args:
        part: The frozen model whose outputs are cached (images in).
        kind: What it outputs, for the key and the log (``"features"``).
        layer: The layer whose output it is.
        image_size: The size images reach the backbone at.
        resize: How the data's images were resized to their stored size, where known.
        store: Where the outputs are kept; default: the store the environment names
            (:func:`transferkit._cache.cache_root`), if the cache is on. None in a
            multi-worker job, whatever is given.

    Example:
        >>> import tempfile
        >>> part = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.GlobalAveragePooling2D()])
        >>> cache = OutputCache(part, kind="features", layer="pool", image_size=4,
        ...                     store=FeatureStore(tempfile.mkdtemp()))
        >>> x = np.ones((2, 4, 4, 3), np.uint8)
        >>> first = cache.get_or_compute(x, lambda: part.predict(x, verbose=0), label="train")
        >>> again = cache.get_or_compute(x, lambda: 1 / 0, label="train")  # not called: a hit
        >>> bool((first == again).all()), cache.hits
        (True, ['train'])
    """

    def __init__(self, part: keras.Model, *, kind: str, layer: str, image_size,
                 resize: str | None = None, store: FeatureStore | None = None) -> None:
        self.store = FeatureStore.from_environment() if store is None else store
        if current_role(part).multi_worker:
            # The workers compute the outputs together (one distributed predict): a hit in
            # one worker's cache and a miss in another's would leave them waiting for ever.
            self.store = None
        self.part, self.kind = part, kind
        self.fields = {"format": KEY_FORMAT, "kind": kind, "layer": layer,
                       "image_size": image_size, "resize": resize}
        self.hits: list[str] = []
        self.writes: list[str] = []
        self.computed: list[str] = []
        self._bytes = {"hit": 0, "write": 0}
        self._part_digests: dict | None = None
        self._data_digests: dict[int, tuple[np.ndarray, str]] = {}

    def key(self, images: np.ndarray | ImageFiles, *, flip: bool = False) -> str:
        """The key of the part's outputs for ``images`` (their mirror images with ``flip``)."""
        if self._part_digests is None:  # once per call: the weights do not change during it
            self._part_digests = {"weights": weights_digest(self.part),
                                  "structure": structure_digest(self.part)}
        # Each array is hashed once per call (the train split serves two views). The
        # array is kept with its digest, so its id cannot be reused by another array.
        held, digest = self._data_digests.get(id(images), (None, None))
        if held is not images:
            # Streamed images are known by their files (hashing pixels would decode them all).
            digest = images.digest() if isinstance(images, ImageFiles) else array_digest(images)
            self._data_digests[id(images)] = (images, digest)
        fields = {**self.fields, **self._part_digests, "view": "flip" if flip else "plain",
                  "data": digest}
        return hashlib.blake2b(json.dumps(fields, sort_keys=True).encode(),
                               digest_size=16).hexdigest()

    def has(self, images: np.ndarray | ImageFiles, *, flip: bool = False) -> bool:
        """Whether the cache holds an entry for ``images`` (it may still prove torn on reading)."""
        return self.store is not None and self.store.path(self.key(images, flip=flip)).exists()

    def get_or_compute(self, images: np.ndarray | ImageFiles, compute: Callable[[], np.ndarray], *,
                       flip: bool = False, label: str) -> np.ndarray:
        """The cached outputs for ``images``, else ``compute()``'s, which are then stored.

        Args:
            images: The images the outputs are of (hashed for the key).
            compute: Computes the outputs where the cache has none.
            flip: Whether they are of the mirror images.
            label: What they are, for the log (``"train split"``).
        """
        if self.store is None:
            return compute()
        label = f"{label}, mirrored" if flip else label
        key = self.key(images, flip=flip)
        # Outputs of streamed images stay on disk: the entry is read memory-mapped.
        found = self.store.get(key, mmap=isinstance(images, ImageFiles))
        if found is not None:
            self.hits.append(label)
            self._bytes["hit"] += found.nbytes
            return found
        out = compute()
        self.computed.append(label)
        if self.store.put(key, out):
            self.writes.append(label)
            self._bytes["write"] += out.nbytes
        return out

    def log_summary(self, seconds: float | None = None) -> None:
        """One line for the outputs read from the cache, one for those written to it."""
        took = "" if seconds is None else f", {seconds:.1f} s in all"
        if self.hits:
            logger.info("%s from the cache (%s: %s%s).", self.kind.capitalize(),
                        ", ".join(self.hits), format_size(self._bytes["hit"]), took)
        if self.writes:
            logger.info("%s written to the cache at %s (%s: %s).", self.kind.capitalize(),
                        self.store.root, ", ".join(self.writes), format_size(self._bytes["write"]))

    @property
    def all_hits(self) -> bool:
        """Whether every output asked for came from the cache."""
        return bool(self.hits) and not self.computed
