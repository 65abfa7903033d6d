"""The head a fresh model trains first, on the frozen backbone, before fine-tuning moves it.

A new head's first gradients, carried into the backbone at the recipe's rate,
wreck the pretrained features when the warm-up is short: one epoch of
``fine_tune`` on a fresh model ended at chance. Training the head alone first
(cached features, cheap) removes the problem, as fastai's ``fine_tune`` does.
:func:`~transferkit.training.recipes.fine_tune` calls :func:`train_head_first`.
"""

from __future__ import annotations

import logging
import time

import keras
import numpy as np

from transferkit.data.splits import DataSplits
from transferkit.data.stratify import limit_indices, take
from transferkit.errors import ConfigurationError
from transferkit.models.anatomy import find_backbone
from transferkit.models.freezing import set_freeze
from transferkit.training.train import train

logger = logging.getLogger("transferkit")

HEAD_FIRST_STEPS, HEAD_FIRST_EPOCHS = 100, (3, 30)
"""A fresh head trains for at least this many steps on cached features, in (min, max) epochs.

Epochs on cached features cost little (a Dense layer per step): small sets get
more of them, so that the head has learned before the backbone moves.
"""
HEAD_FIRST_IMAGES = 10_000
"""The most training images the head trained first sees (a seeded choice, as many per class).

Its cost is the frozen backbone's pass over them, and it only has to lift the head
off chance. On all 50,000 CIFAR-10 images (and the 10,000 test images, scored for
nothing), that pass took 269 s of a 600 s budget on a 2-core AVX2 EPYC, before the
fine-tune's own caching began; on 10,000 it takes a fifth of the training part.
"""


def train_head_first(model: keras.Model, data: DataSplits, when: bool | str,
                     train_kwargs: dict) -> dict | None:
    """Train a fresh head on the frozen backbone before fine-tuning (see the module); what was
    done, or None."""
    if when not in (True, False, "auto"):
        raise ConfigurationError(f"head_first must be True, False or 'auto', got {when!r}.")
    if when is False or (when == "auto" and not _at_chance(model, data)):
        return None
    started = time.perf_counter()
    set_freeze(find_backbone(model), True)
    keep = {k: train_kwargs[k] for k in ("seed", "verbose", "batch_size", "class_weight")
            if k in train_kwargs}
    head_data = head_first_data(data, seed=keep.get("seed") or 0)
    steps = -(-len(head_data.y_train) // keep.get("batch_size", 64))
    low, high = HEAD_FIRST_EPOCHS
    epochs = min(high, max(low, -(-HEAD_FIRST_STEPS // steps)))
    logger.info("The head scores at chance: training it on the frozen backbone first "
                "(%d epochs on %d training images); head_first=False skips this.",
                epochs, len(head_data.y_train))
    head = train(model, head_data, epochs=epochs, cache_features=True, **keep)
    return {"epochs": epochs, "images": len(head_data.y_train),
            "seconds": round(time.perf_counter() - started, 1),
            "val_accuracy": (head.history.get("val_accuracy") or [None])[-1]}


def head_first_data(data: DataSplits, *, seed: int = 0) -> DataSplits:
    """What the head trained first sees: at most :data:`HEAD_FIRST_IMAGES` training images, no test.

    A seeded choice of the same number per class (smaller classes whole) from the
    training and validation splits; the test split stays empty, since nothing reads
    the head's own test score.

    Example:
        >>> from transferkit import make_synthetic_dataset
        >>> d = make_synthetic_dataset(num_classes=2, per_class=40, image_size=8)
        >>> small = head_first_data(d)
        >>> len(small.y_train) == len(d.y_train), len(small.y_test)
        (True, 0)
    """
    per_class = -(-HEAD_FIRST_IMAGES // data.num_classes)
    none = np.zeros(0, np.int64)
    arrays = {}
    for i, split in enumerate(("train", "val")):
        x, y = data.split(split)
        idx = limit_indices(y, per_class, seed + i) if len(y) > HEAD_FIRST_IMAGES else np.arange(len(y))
        arrays[f"x_{split}"], arrays[f"y_{split}"] = take(x, idx), y[idx]
    return DataSplits(**arrays, x_test=take(data.x_test, none), y_test=data.y_test[none],
                      class_names=data.class_names, source=data.source,
                      provenance=data.provenance)


def _at_chance(model: keras.Model, data: DataSplits, sample: int = 512) -> bool:
    """Whether ``model`` scores under 1.5x chance on (a sample of) validation or training images."""
    x, y = (data.x_val, data.y_val) if len(data.y_val) else (data.x_train, data.y_train)
    x, y = x[:sample], y[:sample]
    if not len(y):
        return False
    accuracy = float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))
    return accuracy < 1.5 / data.num_classes
