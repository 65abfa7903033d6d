"""Which way a training call feeds the model: the one place a fast path is chosen.

- :class:`~transferkit.training.cached_head.CachedHead`: ``train`` of a
  classifier whose backbone is frozen, without augmentation that changes the
  images (``cache_features``).
- :class:`~transferkit.training.cached_prefix.CachedPrefix`: ``fine_tune``
  where a prefix of the backbone stays frozen and crop + flip is on
  (``cache_prefix``).
- :class:`~transferkit.training.progressive.Progressive`: ``fine_tune``
  where the whole backbone trains and the model upscales inside
  (``progressive``).
- :class:`~transferkit.training.core.Streamed`: everything else: the images, every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass

from transferkit.training.cached_head import CachedHead, cached_head_valid
from transferkit.training.cached_prefix import CachedPrefix, prefix_cut
from transferkit.training.core import Streamed
from transferkit.training.plan import TrainOptions
from transferkit.training.progressive import Progressive, progressive_phases


@dataclass(frozen=True)
class FineTuneRequest:
    """What ``fine_tune`` asks of the fast paths: the frozen prefix, and the user's switches."""

    frozen: object
    cache_prefix: bool | str = "auto"
    progressive: object = "auto"


def choose_fast_path(model, data, options: TrainOptions, fine_tune: FineTuneRequest | None = None):
    """The fast path for this call (each path logs one line when it runs).

    Raises:
        ConfigurationError: Where a path was required (``cache_features=True``,
            ``cache_prefix=True``, ``progressive=True``) but is not valid.
    """
    if fine_tune is None:
        if cached_head_valid(model, options.augment, options.cache_features):
            return CachedHead(flip=options.augment == "flip")
        return Streamed()
    cut = prefix_cut(model, data, fine_tune.frozen, options.augment, fine_tune.cache_prefix,
                     fine_tune.progressive)
    if cut is not None:
        return CachedPrefix(cut, required=fine_tune.cache_prefix is True)
    phases = progressive_phases(model, options.epochs, fine_tune.progressive,
                                train_images=len(data.y_train))
    return Streamed() if phases is None else Progressive(phases)
