"""The recipes: frozen head, fine-tuning (measured and classic) and training from scratch.

A recipe is a set of choices (optimizer, peak learning rate scaled with the
batch size, warm-up + cosine schedule, weight decay, augmentation, loss)
held in one :class:`Recipe`, which compiles the model and is recorded in
the run. Each recipe function resolves its recipe for the data and hands it
to :func:`~transferkit.training.train.run_training`, which chooses the fast
path (:mod:`~transferkit.training.fastpath`) and fits.

- **Frozen head**: :func:`~transferkit.training.train.train` of a model
  whose backbone is frozen (features cached).
- **Fine-tuning** (:func:`fine_tune`): the backbone trains (BatchNorm frozen;
  MobileNetV2's stem and first five blocks stay frozen too, which doubles its
  speed) with AdamW (1e-3 at batch 256, weight decay 0.05), a linear warm-up
  over the first 5 % of steps then cosine decay to 0, and random crop +
  horizontal flip. About 0.90 on full CIFAR-10 (docs/results.md).
- **Classic fine-tuning**: ``fine_tune(model, data, unfreeze=20, lr=1e-5,
  optimizer="adam", weight_decay=0, warmup=0, progressive=False)``, the
  textbook recipe (0.742 on full CIFAR-10).
- **From scratch** (:func:`train_from_scratch`): the fair baseline, AdamW
  at 2e-3 per batch of 128, 10 % warm-up, crop + flip.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import keras

from transferkit._validation import check_scalar
from transferkit.data.augment import AUGMENTATIONS
from transferkit.data.splits import DataSplits
from transferkit.errors import ConfigurationError
from transferkit.models.anatomy import find_backbone
from transferkit.models.freezing import FreezeSpec, set_freeze
from transferkit.models.registry import BACKBONES
from transferkit.runs.record import Run
from transferkit.training.budget import Budget
from transferkit.training.class_weight import resolve_class_weight
from transferkit.training.fastpath import FineTuneRequest
from transferkit.training.head_first import train_head_first
from transferkit.training.losses import recipe_loss
from transferkit.training.optim import recipe_optimizer
from transferkit.training.plan import TrainOptions, resolve_epochs
from transferkit.training.train import run_training

logger = logging.getLogger("transferkit")

BASE_LR, BASE_BATCH = 1e-3, 256
"""Fine-tuning's peak learning rate at its batch size (scaled linearly for others)."""
SCRATCH_LR, SCRATCH_BATCH = 2e-3, 128
"""The same pair for :func:`train_from_scratch`."""
SMALL_DATA, SMALL_BATCH = 10_000, 64
"""Below this many training images the default batch is this (small sets still get steps)."""


@dataclass(frozen=True)
class Recipe:
    """A recipe's choices, resolved for one dataset: it compiles the model and is recorded.

    Example:
        >>> from transferkit import make_synthetic_dataset
        >>> r = Recipe.resolve(make_synthetic_dataset(num_classes=2, per_class=10),
        ...                    base_lr=1e-3, base_batch=256, warmup=0.05, weight_decay=0.05,
        ...                    optimizer="adamw", augment=True)
        >>> r.batch_size, r.lr  # a small set: batch 64, learning rate scaled with it
        (64, 0.00025)
    """

    lr: float
    batch_size: int
    warmup: float
    weight_decay: float
    optimizer: str
    augment: bool | str
    label_smoothing: float = 0.0
    fine_tune: FineTuneRequest | None = None
    unfreeze: FreezeSpec | None = None
    head_first: dict | None = None

    @classmethod
    def resolve(cls, data: DataSplits, *, base_lr: float, base_batch: int, lr: float | None = None,
                batch_size: int | None = None, **choices) -> Recipe:
        """The recipe for ``data``: batch ``base_batch`` (64 for small sets), ``lr`` scaled to it."""
        batch_size = batch_size or (base_batch if len(data.y_train) >= SMALL_DATA else SMALL_BATCH)
        lr = base_lr * batch_size / base_batch if lr is None else lr
        check_scalar(lr, "lr", min_val=0, include_min=False)
        check_scalar(choices.get("warmup", 0), "warmup", min_val=0, max_val=1, include_max=False)
        check_scalar(choices.get("weight_decay", 0), "weight_decay", min_val=0)
        recipe_loss(choices.get("label_smoothing", 0.0))  # checks it
        return cls(lr=lr, batch_size=batch_size, **choices)

    def compile(self, model: keras.Model, total_steps: int, *, adjustable: bool = False) -> None:
        """Compile ``model`` with this recipe's optimizer, schedule and loss.

        ``adjustable``: a schedule a time budget can re-plan while training.
        """
        model.compile(optimizer=recipe_optimizer(self.optimizer, self.lr, total_steps,
                                                 warmup=self.warmup,
                                                 weight_decay=self.weight_decay,
                                                 adjustable=adjustable,
                                                 gentle=self.fine_tune is not None),
                      loss=recipe_loss(self.label_smoothing), metrics=["accuracy"])

    def record(self, path=None) -> dict:
        """The choices as the run records them, with the fast path ``path`` fine-tuning took."""
        record = {"lr": self.lr, "weight_decay": self.weight_decay, "warmup": self.warmup,
                  "optimizer": self.optimizer, "label_smoothing": self.label_smoothing,
                  "batch_size": self.batch_size, "augment": AUGMENTATIONS.get(self.augment),
                  "schedule": "warmup+cosine"}
        if self.fine_tune is not None:
            frozen = self.fine_tune.frozen
            record |= {"unfreeze": self.unfreeze, "phases": getattr(path, "phases", None),
                       "cached_prefix": getattr(path, "layer_name", None),
                       "cached_views": getattr(path, "views", None) if getattr(
                           path, "layer_name", None) else None,
                       "frozen_through": frozen if isinstance(frozen, str) else None,
                       "head_first": self.head_first}
        return record


def fine_tune(
    model: keras.Model,
    data: DataSplits,
    *,
    unfreeze: FreezeSpec = "auto",
    lr: float | None = None,
    weight_decay: float = 0.05,
    epochs: int | None = None,
    budget: float | str | None = None,
    warmup: float = 0.05,
    batch_size: int | None = None,
    augment: bool | str = True,
    optimizer: str = "adamw",
    train_batchnorm: bool = False,
    progressive: bool | str | list[tuple[int, int]] = "auto",
    cache_prefix: bool | str = "auto",
    label_smoothing: float = 0.0,
    head_first: bool | str = "auto",
    **train_kwargs,
) -> Run:
    """Train the backbone with the measured recipe (or the classic one, on request).

    Unfreezes the backbone (BatchNorm stays frozen unless ``train_batchnorm``),
    compiles a fresh ``optimizer`` whose learning rate warms up linearly over
    the first ``warmup`` fraction of steps and then decays to 0 on a cosine,
    and trains with random crop + flip. It works on a fresh model too: the
    warm-up protects the pretrained weights from the new head's first
    gradients. Where the backbone's first layers stay frozen (``unfreeze="auto"``
    for MobileNetV2), their activations are computed once and the rest trains
    on them (``cache_prefix``, :mod:`~transferkit.training.cached_prefix`); otherwise, where the
    model upscales its inputs inside, most epochs run at a lower resolution
    (``progressive``). One log line says which fast path runs.

    Args:
        model: A transfer model (after :func:`~transferkit.training.train.train`
            or fresh from :func:`~transferkit.models.builders.build_transfer_model`).
        data: The dataset.
        unfreeze: ``"auto"`` (default: the backbone's measured choice, e.g.
            MobileNetV2 from ``block_6`` on, else all of it), ``"all"`` (the
            whole backbone), an int ``n`` (the classic recipe: only the last
            ``n`` layers) or a layer name (train everything after it).
        lr: Peak learning rate; default ``1e-3 * batch_size / 256``: the
            measured recipe's 1e-3 at batch 256, scaled linearly (at batch 64,
            1e-3 wrecked the pretrained features of a 540-image subset).
        weight_decay: Decoupled weight decay (0 for none).
        epochs: Epochs in all (default 10: 0.90 on full CIFAR-10, at about 2x
            the throughput of plain ``fit`` with the cached prefix; docs/results.md
            gives the times measured on each kind of CPU). With a ``budget``, the most to run.
        budget: Seconds (or ``"10min"``, ``"1h"``) the whole call may take: a
            fresh head trained first, caching, training and the test evaluation.
            A few timed steps choose the number of steps, and the warm-up + cosine
            schedule ends exactly with the budget (:mod:`~transferkit.training.budget`);
            progressive resizing is off. The plan is logged and recorded in
            ``run.config["budget"]``.
        warmup: Fraction of the steps spent warming up (0 for a plain cosine); at
            least 100 steps, or half of a shorter run, which then peaks lower than
            ``lr`` (:func:`~transferkit.training.optim.short_run_peak`).
        batch_size: Images per batch; default 256 with 10,000 training images
            or more, else 64 (small sets then still get enough steps).
        augment: ``True``: random crop (reflect-padded by 1/8 of the side) +
            horizontal flip; ``"photo"``: random-resized crop, flip and mild
            colour jitter (:func:`~transferkit.data.augment.photo_augment`), which
            feeds the images every epoch (no cached prefix); ``"flip"``; ``False``.
        optimizer: Optimizer name, e.g. ``"adamw"`` or ``"adam"``.
        train_batchnorm: Also train BatchNorm scale and offset.
        progressive: ``"auto"`` (progressive resizing where the model upscales
            inside and there are at least 4 epochs), ``False`` (every epoch at
            the model's size), ``True`` (require it), or explicit
            ``[(image_size, epochs), ...]`` phases summing to ``epochs``.
            Used only where the prefix is not cached.
        cache_prefix: ``"auto"`` (cache the frozen prefix's activations of each
            training image and its mirror image, float16, when a prefix is frozen,
            ``augment=True`` and they fit in a quarter of the memory; with
            ``augment="photo"`` a log line says why it feeds images instead;
            under a ``budget``, only where caching buys more epochs than feeding
            the images, and the mirror images only where the budget still holds
            :data:`~transferkit.training.budget.MIRROR_EPOCHS` epochs with them:
            ``run.config["recipe"]["cached_views"]`` says which),
            ``True`` (require it; refused with ``augment="photo"``) or ``False``
            (feed images every epoch).
        label_smoothing: Smooth the one-hot targets by this much
            (:class:`~transferkit.training.losses.SparseSmoothedCrossentropy`); 0: plain
            cross-entropy.
        head_first: ``"auto"`` (default: when the model scores at chance on
            validation, as a fresh model does, first train its head on the frozen
            backbone's cached features, as ``transferkit train`` does:
            :func:`~transferkit.training.head_first.train_head_first`, at least
            100 steps on at most 10,000 training images; recorded as
            ``recipe["head_first"]``), True (always) or False (never).
        **train_kwargs: Passed to :func:`~transferkit.training.train.train`
            (``run_dir``, ``patience``, ``seed``, ``name``, ``verbose`` ...), among
            them ``class_weight="balanced"`` for unbalanced classes (the head
            trained first weighs them too).

    Returns:
        The fine-tuning :class:`~transferkit.runs.record.Run`; its config has a
        ``recipe`` entry with every choice made here.

    Raises:
        ConfigurationError: For bad arguments, ``progressive=True`` where
            the model does not resize inside, or ``cache_prefix=True`` where the
            prefix cannot be cached (e.g. with ``augment="photo"``).

    Example:
        ``data`` here is a small real CIFAR-10 subset (2 classes). MobileNetV2
        trains after ``block_5_add``, on that block's cached activations:

        >>> model = build_transfer_model("mobilenet_v2", data, head=())
        >>> run = fine_tune(model, data, epochs=4, verbose=0)
        >>> run.config["recipe"]["cached_prefix"], run.epochs_run
        ('block_5_add', 4)
        >>> run.evaluation.accuracy > 0.8  # chance: 0.5
        True

        The textbook recipe, for comparison:

        >>> classic = fine_tune(model, data, unfreeze=20, lr=1e-5, weight_decay=0,
        ...                     optimizer="adam", warmup=0, progressive=False,
        ...                     epochs=1, verbose=0)
        >>> classic.config["recipe"]["cached_prefix"] is None
        True
    """
    budget = Budget.start(budget)  # the clock starts now: the head trained first counts
    if budget is not None:
        budget.check_left()  # a budget handed in spent (the CLI's): before the head trains
    progressive = _progressive_within(budget, progressive)
    frozen = _freeze_spec(find_backbone(model), unfreeze)
    recipe = Recipe.resolve(
        data, base_lr=BASE_LR, base_batch=BASE_BATCH, lr=lr, batch_size=batch_size,
        warmup=warmup, weight_decay=weight_decay, optimizer=optimizer, augment=augment,
        label_smoothing=label_smoothing, unfreeze=unfreeze,
        fine_tune=FineTuneRequest(frozen, cache_prefix, progressive))
    options = TrainOptions.for_recipe(
        {"name": f"{model.name}_finetuned", **train_kwargs}, epochs=resolve_epochs(epochs, budget),
        budget=budget, batch_size=recipe.batch_size, augment=augment, cache_features=False,
        compile=False)
    # Its keys, against the data, before the head trains first (which freezes the backbone).
    resolve_class_weight(options.class_weight, data.y_train, data.class_names)
    recipe = replace(recipe, head_first=train_head_first(model, data, head_first, train_kwargs))
    set_freeze(find_backbone(model), frozen, train_batchnorm=train_batchnorm)
    return run_training(model, data, options, recipe=recipe)


def _progressive_within(budget: Budget | None, progressive):
    """Progressive resizing's phases span fixed epochs: off under a budget."""
    if budget is None or progressive is False:
        return progressive
    if progressive != "auto":
        raise ConfigurationError("progressive= phases span a fixed number of epochs: use "
                                 "progressive=False (or 'auto') with a budget.")
    return False


def _freeze_spec(base: keras.Model, unfreeze: FreezeSpec) -> FreezeSpec:
    """``unfreeze`` as a :func:`~transferkit.models.freezing.set_freeze` spec (what stays frozen)."""
    if unfreeze == "all":
        return False
    if unfreeze != "auto":
        return unfreeze
    spec = BACKBONES.get(base.name)
    last_frozen = spec.fine_tune_freeze if spec is not None else None
    if last_frozen and last_frozen in {layer.name for layer in base.layers}:
        logger.info("Fine-tuning %s after %s (BatchNorm frozen); unfreeze='all' trains all of it.",
                    base.name, last_frozen)
        return last_frozen
    return False


def train_from_scratch(
    model: keras.Model,
    data: DataSplits,
    *,
    epochs: int | None = None,
    budget: float | str | None = None,
    lr: float | None = None,
    weight_decay: float = 0.05,
    warmup: float = 0.1,
    batch_size: int | None = None,
    augment: bool | str = True,
    optimizer: str = "adamw",
    label_smoothing: float = 0.0,
    **train_kwargs,
) -> Run:
    """Train a model from its initial weights with warm-up + cosine, AdamW and crop + flip.

    Args:
        model: A model to train whole, e.g.
            ``build_baseline_cnn(10, residual=True)``.
        data: The dataset.
        epochs: Epochs (default 10; the schedule spans exactly these). With a
            ``budget``, the most to run.
        budget: Seconds (or ``"10min"``) the whole call may take; the schedule
            ends with it (see :func:`fine_tune`).
        lr: Peak learning rate; default ``2e-3 * batch_size / 128``.
        weight_decay: Decoupled weight decay.
        warmup: Fraction of the steps spent warming up.
        batch_size: Images per batch; default 128 with 10,000 training images
            or more, else 64.
        augment: Random crop + horizontal flip (``"photo"``: random-resized crop,
            flip and colour jitter; see :func:`fine_tune`).
        optimizer: Optimizer name.
        label_smoothing: Smooth the one-hot targets by this much; 0: plain cross-entropy.
        **train_kwargs: Passed to :func:`~transferkit.training.train.train`
            (``run_dir``, ``patience``, ``seed``, ``name``, ``verbose`` ...), among
            them ``class_weight="balanced"`` for unbalanced classes.

    Returns:
        The :class:`~transferkit.runs.record.Run`.

    Example:
        ``data`` here is a small real CIFAR-10 subset (2 classes, 200 training
        images): small batches give the schedule enough steps.

        >>> cnn = build_baseline_cnn(data, residual=True)
        >>> run = train_from_scratch(cnn, data, epochs=8, batch_size=16, verbose=0)
        >>> run.config["recipe"]["schedule"], run.epochs_run
        ('warmup+cosine', 8)
        >>> run.evaluation.accuracy > 0.75  # chance: 0.5
        True
    """
    recipe = Recipe.resolve(
        data, base_lr=SCRATCH_LR, base_batch=SCRATCH_BATCH, lr=lr, batch_size=batch_size,
        warmup=warmup, weight_decay=weight_decay, optimizer=optimizer, augment=augment,
        label_smoothing=label_smoothing)
    options = TrainOptions.for_recipe(train_kwargs, epochs=resolve_epochs(epochs, budget),
                                      budget=budget, batch_size=recipe.batch_size,
                                      augment=augment, cache_features=False, compile=False)
    return run_training(model, data, options, recipe=recipe)
