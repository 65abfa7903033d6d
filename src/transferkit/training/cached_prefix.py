"""The fine-tuning fast path: the frozen prefix's activations, computed once.

:func:`~transferkit.training.recipes.fine_tune` keeps a backbone's stem and first
blocks frozen (MobileNetV2: through ``block_5_add``). Those layers run at the
highest resolutions and cost most of a training step, yet they compute the
same thing every epoch. So the activations at the cut are computed once per
training image and once for its mirror image, stored as float16, and the
trainable rest of the model (the *suffix*: the remaining blocks, pooling and
head) trains on them. Random shifts of the activation map stand in for random
crops: at MobileNetV2's stride 8 one cell is 8 px of the 96-px input, 2.7 px of
a 32-px CIFAR image, about the usual pad-4 crop. The suffix shares its layers
with the model, so the model ends up holding the trained weights and saves,
reloads and predicts like any other. The activations are kept on disk too
(:class:`~transferkit.models.fingerprint.OutputCache`): fine-tuning the same
model from the same frozen weights on the same images again reads them back.

Caching is paid before the first step: two passes of the frozen layers (each
image and its mirror). Under a time budget that holds fewer than about two
epochs, feeding the images (the frozen layers run every step) trains more
steps, and where it holds a few epochs, leaving out the mirror view trains more of
them; so timed batches decide (:func:`~transferkit.training.budget.views_that_pay`).

Measured on full CIFAR-10 (a 2-core AVX-512 Xeon): the suffix trains at about
1,050 images/s (an epoch in 46-49 s), 1.8x the 596 of the same model fed
images at full resolution, where progressive resizing spends most epochs at 64
px; with the default 10 epochs, ``fine_tune`` reached 0.899 test accuracy in
9.6 minutes, everything included (docs/results.md; a 2-core AVX2 EPYC took
about 4.5x as long).
"""

from __future__ import annotations

import logging
import math
import os
import time

import keras
import numpy as np

from transferkit._diskarray import is_on_disk, release
from transferkit._progress import format_size
from transferkit.data.augment import crop_flip_indices, gather_crops
from transferkit.data.stream import ImageFiles
from transferkit.errors import ConfigurationError
from transferkit.models.features import predict_in_chunks
from transferkit.models.fingerprint import OutputCache
from transferkit.models.parts import Classifier
from transferkit.runs.evaluation import evaluate
from transferkit.training.budget import refuse_before_preparing, views_that_pay
from transferkit.training.core import Streamed, fit, validation_input
from transferkit.training.eta import format_duration
from transferkit.training.plan import Plan
from transferkit.training.timing import per_item_time, step_time

logger = logging.getLogger("transferkit")

SHIFT = 1
"""Largest random shift of the activation map, in cells (each way)."""
MEMORY_FRACTION = 0.25
"""Cache only when both views fit in this fraction of the machine's memory (images in memory;
those of streamed images go to disk, memory-mapped)."""
PHOTO_REASON = ("augment='photo' crops and rescales every image anew each epoch, so the "
                "frozen layers see new inputs; cached activations only stand in for crop + "
                "flip (augment=True), by shifting them")
"""Why ``augment="photo"`` cannot use the cache (logged, or raised for ``cache_prefix=True``)."""


def cache_bytes(shape: tuple[int, ...], images: int, views: int = 2) -> int:
    """Memory the float16 activations of shape ``shape`` take for ``images`` images in ``views`` views."""
    return 2 * views * images * math.prod(shape)


def fits_in_memory(nbytes: int) -> bool:
    """Whether ``nbytes`` stays under ``MEMORY_FRACTION`` of this machine's memory."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not POSIX: assume 8 GiB
        total = 8 * 2**30
    return nbytes <= MEMORY_FRACTION * total


def cache_activations(prefix: keras.Model, images: np.ndarray, *, flip: bool = False,
                      batch_size: int = 256) -> np.ndarray:
    """The prefix's activations of ``images`` (or of their mirror images) as float16.

    Example:
        >>> from transferkit import build_transfer_model
        >>> prefix, _ = build_transfer_model(weights=None).split_at("block_5_add")
        >>> cache_activations(prefix, np.zeros((3, 32, 32, 3), np.uint8)).shape
        (3, 12, 12, 32)
    """
    return predict_in_chunks(prefix, images, flip=flip, batch_size=batch_size, dtype=np.float16)


class ShiftedViews(keras.utils.PyDataset):
    """Batches of cached activations: a random view (image or mirror) and shift per sample.

    Args:
        views: Arrays of the same images' activations, e.g. ``[image, mirror]``.
        labels: Integer labels.
        batch_size: Samples per batch.
        shift: Largest random shift in cells each way (reflect padding); 0 for none.
        seed: Seed of the shuffling, view and shift choices.
    """

    def __init__(self, views: list[np.ndarray], labels: np.ndarray, batch_size: int, *,
                 shift: int = SHIFT, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.views, self.labels = views, np.asarray(labels)
        self.batch_size, self.shift = int(batch_size), int(shift)
        self.rng = np.random.default_rng(seed)
        self.order = self.rng.permutation(len(self.labels))

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def on_epoch_end(self) -> None:
        self.order = self.rng.permutation(len(self.labels))
        for view in self.views:  # memory-mapped (streamed images): hand the pages back
            release(view)

    def __getitem__(self, index: int):
        idx = self.order[index * self.batch_size:(index + 1) * self.batch_size]
        pick = self.rng.integers(0, len(self.views), len(idx))
        # A random crop of the reflect-padded map, a shift of up to `shift` cells, is a choice
        # of source cells: each is read once from the float16 views and written once as
        # float32, with no padded or intermediate batch: 2.2 ms a batch of 256, not 7.0
        # (benchmarks/batch_streams.py; a whole epoch does not change measurably).
        rows, cols = crop_flip_indices(len(idx), *self.views[0].shape[1:3], self.rng,
                                       pad=self.shift, flip=False)
        # A new batch every step, no ring of reused ones: TensorFlow keeps 64-byte-aligned
        # arrays without copying while the pipeline builds the next batches
        # (tests/data/test_batch_equivalence.py), and a ring of three measured no faster.
        batch = np.empty((len(idx), *self.views[0].shape[1:]), np.float32)
        for v, view in enumerate(self.views):
            at = np.flatnonzero(pick == v)
            batch[at] = gather_crops(view, idx[at], rows[at], cols[at])
        return batch, self.labels[idx]


def prefix_cut(model, data, frozen, augment, cache_prefix, progressive) -> str | None:
    """The frozen backbone layer whose activations are cached, or None (then another path runs).

    Raises:
        ConfigurationError: For a bad ``cache_prefix``, or ``cache_prefix=True``
            where caching is not valid.
    """
    if cache_prefix not in (True, False, "auto"):
        raise ConfigurationError(f"cache_prefix must be True, False or 'auto', got {cache_prefix!r}.")
    if cache_prefix is False:
        return None
    reason = None
    if progressive is True or isinstance(progressive, (list, tuple)):
        reason = "progressive resizing was asked for"
    elif not isinstance(frozen, str):
        reason = "no part of the backbone stays frozen"
    elif not isinstance(model, Classifier):
        reason = "the model is not a transferkit classifier, which knows where to cut"
    elif augment == "photo":
        reason = PHOTO_REASON
    elif augment is not True:
        reason = "it stands in for crop + flip augmentation (augment=True)"
    else:
        # The backbone was built at the size the model feeds it: its layer's
        # output shape is the prefix's.
        shape = model.backbone.get_layer(frozen).output.shape[1:]
        need = None if None in shape else cache_bytes(shape, len(data.y_train))
        if need is None:  # a backbone built for any size (None, None): no size to plan for
            reason = f"layer {frozen!r} has no fixed output size {tuple(shape)}"
        elif not fits_in_memory(need) and not isinstance(data.x_train, ImageFiles):
            reason = f"its activations ({format_size(need)}) would not fit in memory"
    if reason is None:
        return frozen
    if cache_prefix is True:
        remedy = ("; with augment='photo' use cache_prefix='auto' or False (images every "
                  "epoch), or augment=True to keep the cache" if reason is PHOTO_REASON else "")
        raise ConfigurationError(f"Cannot cache the frozen prefix: {reason}{remedy}.")
    if reason is PHOTO_REASON:  # the user asked for an augmentation that costs the fast path
        logger.info("Feeding the images every epoch, not the frozen prefix's cached "
                    "activations: %s (about 2x slower).", reason)
    return None


class CachedPrefix:
    """Train the suffix on the frozen prefix's cached activations (see the module)."""

    name = "cached_prefix"

    def __init__(self, layer_name: str, *, required: bool = False) -> None:
        self.layer_name, self.required = layer_name, required
        self.views = 2
        """How many views of each training image are cached, 2 (the image and its mirror
        image) or, under a short budget, 1 (the image alone)."""

    def fit(self, plan: Plan, timings: dict):
        model, data = plan.model, plan.data
        prefix, suffix = model.split_at(self.layer_name)
        t = time.perf_counter()
        cache = OutputCache(prefix, kind="prefix activations", layer=self.layer_name,
                            image_size=model.resize_size or list(model.input_shape[1:3]),
                            resize=data.provenance.get("resize"))

        def activations(x: np.ndarray, split: str, flip: bool = False) -> np.ndarray:
            return cache.get_or_compute(x, lambda: cache_activations(prefix, x, flip=flip),
                                        flip=flip, label=f"{split} split")

        suffix.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
        if plan.budget is not None and isinstance(data.x_train, np.ndarray):
            self.views = _views_that_pay(plan, cache, prefix, suffix, required=self.required)
            if not self.views:
                return self._feed_images(plan, timings)
        views = [activations(data.x_train, "train")]
        if self.views == 2:
            views.append(activations(data.x_train, "train", True))
        val = None
        if len(data.y_val):
            val = activations(data.x_val, "val")
            val = validation_input(val if is_on_disk(val) else val.astype(np.float32), data.y_val,
                                   plan.batch_size)
        timings["features"] = time.perf_counter() - t
        plan.test_model = model  # the test evaluation runs the prefix too: a budget times it
        cache.log_summary()
        ran = "came from the cache" if cache.all_hits else (
            "ran once per image and mirror image" if self.views == 2 else
            "ran once per image (no mirror images: the budget buys more epochs without them)")
        logger.info("Fine-tuning fast path: the frozen prefix (through %s) %s in %.0f s; the "
                    "rest trains on its activations (%s per view).", self.layer_name, ran,
                    timings["features"], format_size(views[0].nbytes))
        batches = ShiftedViews(views, data.y_train, plan.batch_size, seed=plan.options.seed or 0)
        # The batches reshuffle themselves.
        history = fit(plan, suffix, {"x": batches, "shuffle": False}, val)
        return history, lambda: evaluate(model, data, "test")  # the full model

    def _feed_images(self, plan: Plan, timings: dict):
        """Train the model on the images, its prefix frozen but run every step: nothing cached."""
        self.layer_name = None  # the run records that no prefix was cached
        # Timed, not guessed as a third of a step: no backward pass reaches the frozen layers,
        # so a step costs less than three forward passes: guessed at 7.8 s on all of CIFAR-10, the
        # test made a 257-s run end 7 s late.
        plan.test_model = plan.model
        return Streamed().fit(plan, timings)


def _views_that_pay(plan: Plan, cache: OutputCache, prefix: keras.Model, suffix: keras.Model, *,
                    required: bool) -> int:
    """Under a budget: how many views caching should hold (2, 1), or 0 to feed the images.

    Times the prefix on one batch of training images and 3 suffix steps on its
    activations (real training steps, counted by the schedule like the budget's
    own timed steps), then weighs the three ways
    (:func:`~transferkit.training.budget.views_that_pay`). Where the way chosen
    cannot pay for one epoch, it refuses now, before caching: on a 2-core AVX2
    EPYC, ``budget=600`` on all of CIFAR-10 had been refused only after 6.9
    minutes of caching and timing. ``required`` (``cache_prefix=True``): both views.
    """
    data, batch = plan.data, plan.batch_size
    probe = data.x_train[:batch]
    per_image, acts = per_item_time(lambda: cache_activations(prefix, probe), len(probe))

    def cost(x: np.ndarray, flip: bool = False) -> float:  # nothing for what is cached already
        return 0.0 if not len(x) or cache.has(x, flip=flip) else len(x) * per_image

    image_pass = cost(data.x_train) + cost(data.x_val)
    mirror_pass = cost(data.x_train, flip=True)
    # 3 batches of the probe's activations: fit times 2 steps after the one that compiles.
    views, labels = [np.concatenate([acts] * 3)] * 2, np.tile(data.y_train[:batch], 3)
    step = step_time(suffix, {"x": ShiftedViews(views, labels, batch), "shuffle": False}, 2)
    epoch = -(-len(data.y_train) // batch) * step
    # Without the cache the frozen layers run on every training and validation image
    # each epoch (measured: a step costs the suffix's step plus the prefix's pass, within 3 %).
    fed_epoch = epoch + (len(data.y_train) + len(data.y_val)) * per_image
    final = len(data.y_test) * per_image
    n = 2 if required else views_that_pay(
        plan.budget, image_pass=image_pass, mirror_pass=mirror_pass, cached_epoch=epoch,
        fed_epoch=fed_epoch, final=final)
    if n:
        refuse_before_preparing(plan.budget, preparing=image_pass + (n - 1) * mirror_pass,
                                epoch=epoch, final=final,
                                what="caching the frozen prefix's activations")
        return n
    refuse_before_preparing(plan.budget, preparing=0.0, epoch=fed_epoch, final=final,
                            what="feeding the images; caching would leave less time")
    logger.info("Feeding the images every epoch, not caching the frozen prefix: within the "
                "budget, caching (about %s, then %s an epoch) would leave fewer epochs than "
                "feeding them (%s an epoch; caching pays from about one).",
                format_duration(image_pass), format_duration(epoch), format_duration(fed_epoch))
    return 0
