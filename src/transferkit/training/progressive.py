"""Fast path: progressive resizing, where the whole backbone trains.

Where no prefix of the backbone stays frozen (so :mod:`~transferkit.training.cached_prefix`
cannot help) and the model upscales its inputs inside, most epochs run
through a *view* of the model at a lower resolution
(:meth:`~transferkit.models.parts.Classifier.resolution_view`):
it shares every layer, and so every weight and the optimizer, with the model,
so training the view trains the model.
"""

from __future__ import annotations

import logging
import shutil

import keras

from transferkit.errors import ConfigurationError
from transferkit.models.registry import BACKBONES
from transferkit.runs.evaluation import evaluate
from transferkit.runs.layout import BACKUP_DIR
from transferkit.training.core import fit, image_inputs
from transferkit.training.plan import Plan

logger = logging.getLogger("transferkit")

LOW_RES_FACTOR = 2 / 3
"""Progressive resizing trains early epochs at this fraction of the full size (96 -> 64 px)."""
FULL_RES_FRACTION = 0.3
"""...and this fraction of the epochs (at least one) at the full size."""
MIN_PROGRESSIVE_EPOCHS = 4
MIN_PROGRESSIVE_IMAGES = 10_000
"""Below this many training images ``"auto"`` keeps one size: an epoch costs seconds
there, and the few full-size steps left cost accuracy (900 CIFAR-10 images, 4
epochs: 0.613 with progressive resizing, 0.707 without)."""


def progressive_phases(model: keras.Model, epochs: int,
                       progressive: bool | str | list[tuple[int, int]] = "auto",
                       *, train_images: int | None = None) -> list[tuple[int, int]] | None:
    """The ``[(image_size, last epoch), ...]`` plan of a fine-tuning run, or None for one size.

    ``"auto"`` plans ``LOW_RES_FACTOR`` of the model's size (rounded to a
    multiple of 16, at least the backbone's smallest size) for all but the last
    ``FULL_RES_FRACTION`` of the epochs, when the model upscales its inputs
    inside, ``epochs >= 4`` and (when ``train_images`` is given) the training
    set holds at least ``MIN_PROGRESSIVE_IMAGES`` images.

    Example:
        >>> from transferkit import build_transfer_model
        >>> m = build_transfer_model("mobilenet_v2", 10, weights=None)
        >>> progressive_phases(m, 8)
        [(64, 6), (96, 8)]
    """
    if progressive is False:
        return None
    full = getattr(model, "resize_size", None)
    if isinstance(progressive, (list, tuple)):
        return _explicit_phases(progressive, epochs, full)
    reason = None
    if full is None:
        reason = "the model does not upscale its inputs inside"
    elif epochs < MIN_PROGRESSIVE_EPOCHS:
        reason = f"fewer than {MIN_PROGRESSIVE_EPOCHS} epochs"
    elif progressive == "auto" and train_images is not None and train_images < MIN_PROGRESSIVE_IMAGES:
        reason = f"fewer than {MIN_PROGRESSIVE_IMAGES} training images"
    low = None if full is None else max(_min_size(model), int(round(full * LOW_RES_FACTOR / 16)) * 16)
    if reason is None and low >= full:
        reason = "the backbone's smallest size is the model's size"
    if reason is not None:
        if progressive is True:
            raise ConfigurationError(f"Cannot resize progressively: {reason}.")
        return None
    high_epochs = max(1, round(epochs * FULL_RES_FRACTION))
    plan = [(low, epochs - high_epochs), (full, epochs)]
    logger.info("Fine-tuning fast path: progressive resizing, epochs 1-%d at %d px, %d-%d at %d px "
                "(same weights; pass progressive=False for %d px throughout).",
                plan[0][1], low, plan[0][1] + 1, epochs, full, full)
    return plan


def _min_size(model: keras.Model) -> int:
    spec = BACKBONES.get(model.backbone.name)
    return getattr(spec, "min_size", 32) if spec is not None else 32


def _explicit_phases(phases, epochs: int, full: int | None) -> list[tuple[int, int]]:
    plan, end = [], 0
    for item in phases:
        size, n = item
        if not (isinstance(size, int) and isinstance(n, int) and size > 0 and n > 0):
            raise ConfigurationError(f"progressive phases are (image_size, epochs) of positive "
                                     f"ints, got {item!r}.")
        end += n
        plan.append((size, end))
    if end != epochs:
        raise ConfigurationError(f"progressive phases add up to {end} epochs, not epochs={epochs}.")
    if full is None and any(size != plan[-1][0] for size, _ in plan):
        raise ConfigurationError("progressive phases need a model that resizes its inputs inside.")
    return plan


class Progressive:
    """Fit each resolution view in turn: ``phases`` is ``[(image_size, last epoch), ...]``."""

    name = "progressive"

    def __init__(self, phases: list[tuple[int, int]]) -> None:
        self.phases = phases

    def fit(self, plan: Plan, timings: dict):
        model = plan.model
        views = [(model.resolution_view(size), end) for size, end in self.phases]
        for view, _ in views:
            if view is not model:  # one optimizer: one schedule across the phases
                view.compile(optimizer=model.optimizer, loss=model.loss, metrics=["accuracy"])
        train_data, val = image_inputs(plan)
        if len(views) == 1 and views[0][0] is model:  # one phase at the model's own size
            history = fit(plan, model, train_data, val)
        else:
            history = fit_phases(plan, views, train_data, val)
        return history, lambda: evaluate(model, plan.data, "test")


def fit_phases(plan: Plan, views, train_data: dict, val) -> dict[str, list[float]]:
    """Fit each view in turn (they share the model's weights and optimizer).

    Each phase keeps its own backup folder until the run ends, so a resumed
    run restores every finished phase's end state and skips its epochs.
    """
    history: dict[str, list[float]] = {}
    start = 0
    for index, (view, end) in enumerate(views):
        part = fit(plan, view, train_data, val, start=start, end=end, backup=plan.backup(index))
        for key, values in part.items():
            history.setdefault(key, []).extend(values)
        if view.stop_training:
            break
        start = end
    if plan.run_path is not None:
        shutil.rmtree(plan.run_path / BACKUP_DIR, ignore_errors=True)
    return history
