"""Fast path: a frozen backbone's features, computed once, and the head trained on them.

When the backbone is frozen and nothing changes the images between epochs,
its output for an image never changes, so :func:`~transferkit.training.train.train`
computes the pooled features of every image once and fits only the head on
them. The head shares its layers with the model, so the model ends up holding
the trained head. ``augment="flip"`` caches the mirror images' features too.
The features are kept on disk too (:class:`~transferkit.models.fingerprint.OutputCache`):
the next call on the same frozen backbone and images reads them back.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from transferkit._diskarray import concatenate_rows, is_on_disk
from transferkit.data.batches import StreamBatches
from transferkit.errors import ConfigurationError
from transferkit.models.anatomy import require_classifier
from transferkit.models.features import extract_features
from transferkit.models.fingerprint import OutputCache
from transferkit.runs.evaluation import evaluate_predictions
from transferkit.training.core import fit, validation_input
from transferkit.training.plan import Plan

logger = logging.getLogger("transferkit")


def cached_head_valid(model, augment: bool | str, cache_features: bool | str) -> bool:
    """Whether the head may train on cached features (``cache_features=True``: or else raise).

    Raises:
        ConfigurationError: If ``cache_features=True`` and caching is not valid.
    """
    if cache_features is False:
        return False
    reason = None
    if augment and augment != "flip":
        reason = "augmentation changes the images every epoch"
    else:
        try:
            if require_classifier(model, "Caching features").backbone.trainable_weights:
                reason = "the backbone has trainable weights"
        except ConfigurationError as exc:
            reason = str(exc)
    if reason is None:
        return True
    if cache_features is True:
        raise ConfigurationError(f"Cannot cache features: {reason}.")
    return False


def feature_cache(model, data) -> OutputCache:
    """The on-disk cache of ``model``'s pooled features (see :mod:`transferkit.models.fingerprint`)."""
    feature_model, _ = model.split_at_pool()
    return OutputCache(feature_model, kind="features", layer=model.pool.name,
                       image_size=model.resize_size or list(model.input_shape[1:3]),
                       resize=data.provenance.get("resize"))


class CachedHead:
    """Train the head on the frozen backbone's features (of each image, and its mirror image)."""

    name = "cached_head"

    def __init__(self, *, flip: bool = False) -> None:
        self.flip = flip

    def fit(self, plan: Plan, timings: dict):
        model, data = plan.model, plan.data
        logger.info("Backbone frozen: training the head on cached features%s.",
                    " of each image and its mirror image" if self.flip else "")
        t = time.perf_counter()
        cache = feature_cache(model, data)

        def features(split: str, flip: bool = False) -> np.ndarray:
            return cache.get_or_compute(
                data.split(split)[0], label=f"{split} split", flip=flip,
                compute=lambda: extract_features(model, data, split, verbose=plan.verbose,
                                                 flip=flip))

        feats = {s: features(s) for s in ("train", "val", "test") if len(data.split(s)[1])}
        on_disk = is_on_disk(feats["train"])  # streamed images: memory-mapped features
        y_train = data.y_train
        if self.flip:  # the mirror images' features: a second view the head trains on
            views = [feats["train"], features("train", flip=True)]
            feats["train"] = concatenate_rows(views) if on_disk else np.concatenate(views)
            y_train = np.concatenate([y_train, y_train])
        timings["features"] = time.perf_counter() - t
        cache.log_summary(timings["features"])
        _, head = model.split_at_pool()
        head.compile_from_config(model.get_compile_config())
        val = validation_input(feats["val"], data.y_val, plan.batch_size) if "val" in feats else None
        # Arrays through Keras' own path: it reshuffles every epoch on every backend. Keras
        # copies arrays whole into the backend: features on disk go a batch at a time.
        train_data = {"x": feats["train"], "y": y_train, "batch_size": plan.batch_size,
                      "shuffle": True}
        if on_disk:
            train_data = {"x": StreamBatches(feats["train"], y_train, plan.batch_size,
                                             shuffle=True, seed=plan.options.seed or 0),
                          "shuffle": False}
        history = fit(plan, head, train_data, val)
        if not model.optimizer.built:
            # The head trained with its own optimizer; build the full model's so a
            # saved .keras file reloads without an optimizer-variable mismatch.
            model.optimizer.build(model.trainable_variables)

        def score():
            test = StreamBatches(feats["test"], None, 1024) if on_disk else feats["test"]
            probs = head.predict(test, batch_size=None if on_disk else 1024, verbose=0)
            return evaluate_predictions(data.y_test, probs, data.class_names)

        return history, score
