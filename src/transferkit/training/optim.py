"""Optimizers from a name and a learning rate (or a warm-up + cosine schedule).

Keras builds them (``keras.optimizers.get``); this only turns transferkit's
arguments into Keras' and checks them first.
"""

from __future__ import annotations

import logging
import math

import keras

from transferkit._validation import check_scalar
from transferkit.errors import ConfigurationError
from transferkit.training.callbacks import warmup_cosine

logger = logging.getLogger("transferkit")


def make_optimizer(
    optimizer: str | keras.optimizers.Optimizer,
    lr: float | keras.optimizers.schedules.LearningRateSchedule | None,
    *,
    weight_decay: float | None = None,
):
    """An optimizer instance from a name (``"adam"``, ``"adamw"``, ``"sgd"`` ...) and learning rate.

    ``lr`` may be a number or a ``LearningRateSchedule``; ``weight_decay`` is
    Keras' decoupled weight decay (every Keras 3 optimizer takes it).

    Example:
        >>> opt = make_optimizer("adam", 1e-4)
        >>> type(opt).__name__, round(float(opt.learning_rate), 6)
        ('Adam', 0.0001)
    """
    if isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    is_schedule = isinstance(lr, keras.optimizers.schedules.LearningRateSchedule)
    if lr is not None and not is_schedule:
        check_scalar(lr, "lr", min_val=0, include_min=False)
    if weight_decay is not None:
        check_scalar(weight_decay, "weight_decay", min_val=0)
    try:
        opt = keras.optimizers.get({"class_name": optimizer, "config": {}})
    except ValueError as exc:
        raise ConfigurationError(f"Unknown optimizer {optimizer!r}: {exc}") from exc
    config = opt.get_config()
    if lr is not None:
        config["learning_rate"] = lr
    if weight_decay is not None:
        config["weight_decay"] = weight_decay
    return type(opt)(**config)


MIN_WARMUP_STEPS, MAX_WARMUP_SHARE = 100, 0.5
"""A warm-up lasts at least this many steps, up to this share of a short run.

The recipe's 5 % of 10 full CIFAR-10 epochs is 98 steps, and learns; 5 % of one
epoch is 10 steps, which took the fresh head's first gradients into the backbone
at the full rate and ended at chance (issue 21).
"""


def warmup_steps(warmup: float, total_steps: int) -> int:
    """Warm-up steps for a ``warmup`` share of ``total_steps``, floored for short runs.

    Example:
        >>> warmup_steps(0.05, 1960), warmup_steps(0.05, 196), warmup_steps(0.05, 40)
        (100, 98, 20)
        >>> warmup_steps(0, 196)  # no warm-up asked: none given
        0
    """
    if warmup <= 0:
        return 0
    floor = min(MIN_WARMUP_STEPS, int(MAX_WARMUP_SHARE * total_steps))
    return min(total_steps - 1, max(round(warmup * total_steps), floor))


FASTEST_WARMUP = 30
"""A warm-up rises to its peak in no fewer steps than this (:func:`short_run_peak`)."""


def short_run_peak(lr: float, warm: int) -> float:
    """The peak of a warm-up of ``warm`` steps that rises no faster than :data:`FASTEST_WARMUP`.

    A run too short for the full warm-up stops rising where a
    :data:`FASTEST_WARMUP`-step rise to ``lr`` would be by then. Measured on 3,000
    CIFAR-10 images (batch 256, a head trained first scoring 0.58-0.61): one epoch
    (12 steps) rising to 1e-3 in 6 steps ended at 0.10-0.29, peaking at 2.3e-4 at
    0.64-0.65; two epochs at 0.48-0.49 against 0.69 (issue 21).

    No warm-up (``warm`` 0) keeps ``lr``: nothing rises.

    Example:
        >>> short_run_peak(1e-3, 100), round(short_run_peak(1e-3, 6), 6), short_run_peak(1e-3, 0)
        (0.001, 0.000226, 0.001)
    """
    return lr * min(1.0, (warm + 1) / (FASTEST_WARMUP + 1)) if warm > 0 else lr


def recipe_optimizer(optimizer: str, lr: float, total_steps: int, *, warmup: float = 0.05,
                     weight_decay: float = 0.05, adjustable: bool = False,
                     gentle: bool = False) -> keras.optimizers.Optimizer:
    """An optimizer whose learning rate warms up over ``warmup`` of the steps, then decays to 0.

    The warm-up lasts :func:`warmup_steps`: at least 100 steps, or half of a shorter run.
    ``adjustable``: a :class:`WarmupCosine`, whose length a time budget sets
    once the step time is measured (Keras' ``CosineDecay`` otherwise).
    ``gentle``: a run too short for the whole warm-up peaks lower
    (:func:`short_run_peak`), as fine-tuning pretrained weights needs.

    Example:
        >>> opt = recipe_optimizer("adamw", 1e-3, 100, warmup=0.1)
        >>> type(opt).__name__, round(float(opt.learning_rate), 6)  # step 0 of 50 warm-up steps
        ('AdamW', 2e-05)
    """
    check_scalar(lr, "lr", min_val=0, include_min=False)
    warm = warmup_steps(warmup, total_steps)
    if adjustable:
        schedule = WarmupCosine(lr, total_steps, warm, warmup=warmup, gentle=gentle)
        return make_optimizer(optimizer, schedule, weight_decay=weight_decay)
    peak = short_run_peak(lr, warm) if gentle else lr
    if peak < lr:
        logger.info("A short run (%d steps): the learning rate rises to %.2g, not %.2g "
                    "(a faster rise wrecks what the head learned).", total_steps, peak, lr)
    schedule = warmup_cosine(peak, total_steps, warmup_steps=warm, final_lr_ratio=0.0)
    return make_optimizer(optimizer, schedule, weight_decay=weight_decay)


@keras.saving.register_keras_serializable(package="transferkit")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to ``peak_lr``, then a half cosine to 0, whose length can change.

    Keras' ``CosineDecay`` holds its step counts as constants of the compiled
    step; a time budget learns how many steps fit only after timing a few, so
    here they are variables: :meth:`set_total_steps` re-plans the schedule
    while training (the steps taken so far keep their rates).

    Example:
        >>> schedule = WarmupCosine(1e-3, total_steps=100, warmup_steps=10)
        >>> round(float(schedule(10)), 6), float(schedule(100))
        (0.001, 0.0)
        >>> schedule.set_total_steps(200, step=50)  # re-planned after the warm-up
        >>> round(float(schedule(105)), 6)  # halfway through the longer cosine
        0.0005
    """

    def __init__(self, peak_lr: float, total_steps: int, warmup_steps: int,
                 warmup: float = 0.05, gentle: bool = False) -> None:
        self.peak_lr, self.warmup, self.gentle = float(peak_lr), float(warmup), bool(gentle)
        self.total_steps = keras.Variable(float(total_steps), dtype="float32", trainable=False,
                                          name="total_steps")
        self.warmup_steps = keras.Variable(float(warmup_steps), dtype="float32", trainable=False,
                                           name="warmup_steps")

    def set_total_steps(self, total_steps: int, *, step: int = 0) -> None:
        """Make the schedule end at ``total_steps``; a warm-up under way at ``step`` is kept."""
        if step < float(self.warmup_steps.numpy()):
            self.warmup_steps.assign(float(warmup_steps(self.warmup, total_steps)))
        self.total_steps.assign(float(total_steps))

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        warm, total = ops.cast(self.warmup_steps, "float32"), ops.cast(self.total_steps, "float32")
        peak = self.peak_lr
        if self.gentle:  # short_run_peak, on the re-planned warm-up (none: the full rate)
            factor = ops.minimum(1.0, (warm + 1.0) / (FASTEST_WARMUP + 1.0))
            peak = peak * ops.where(warm > 0, factor, 1.0)
        start = peak / (warm + 1.0)
        rising = start + (peak - start) * step / ops.maximum(warm, 1.0)
        progress = ops.clip((step - warm) / ops.maximum(total - warm, 1.0), 0.0, 1.0)
        falling = 0.5 * peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warm, rising, falling)

    def get_config(self) -> dict:
        return {"peak_lr": self.peak_lr, "total_steps": int(self.total_steps.numpy()),
                "warmup_steps": int(self.warmup_steps.numpy()), "warmup": self.warmup,
                "gentle": self.gentle}
