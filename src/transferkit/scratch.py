"""Training a CNN from scratch with the recipe that measured best: the fair baseline.

A transfer model should be compared with a from-scratch model trained as well
as the same minutes allow, not with a textbook CNN at a constant learning
rate. The recipe: :func:`~transferkit.models.build_baseline_cnn` with
``residual=True`` (ResNet-9 style), AdamW with weight decay, a linear warm-up
over the first 10 % of steps then cosine decay to 0, and random crop + flip
made in NumPy outside the compiled step. Figures: ``docs/results.md``.
"""

from __future__ import annotations

import math

import keras

from transferkit.data import DataSplits
from transferkit.finetune import _check_recipe, recipe_optimizer
from transferkit.training import LOSS, Run, _strategy_of, train_with_recipe

SCRATCH_LR, SCRATCH_BATCH = 2e-3, 128


def train_from_scratch(
    model: keras.Model,
    data: DataSplits,
    *,
    epochs: int = 10,
    lr: float | None = None,
    weight_decay: float = 0.05,
    warmup: float = 0.1,
    batch_size: int | None = None,
    augment: bool = True,
    optimizer: str = "adamw",
    **train_kwargs,
) -> Run:
    """Train a model from its initial weights with warm-up + cosine, AdamW and crop + flip.

    Args:
        model: A model to train whole, e.g.
            ``build_baseline_cnn(10, residual=True)``.
        data: The dataset.
        epochs: Epochs (the schedule spans exactly these).
        lr: Peak learning rate; default ``2e-3 * batch_size / 128``.
        weight_decay: Decoupled weight decay.
        warmup: Fraction of the steps spent warming up.
        batch_size: Images per batch; default 128 with 10,000 training images
            or more, else 64.
        augment: Random crop + horizontal flip.
        optimizer: Optimizer name.
        **train_kwargs: Passed to :func:`~transferkit.training.train`
            (``run_dir``, ``patience``, ``seed``, ``name``, ``verbose`` ...).

    Returns:
        The :class:`~transferkit.training.Run`.

    Example:
        >>> cnn = build_baseline_cnn(10, residual=True)  # doctest: +SKIP
        >>> run = train_from_scratch(cnn, data, epochs=10)  # doctest: +SKIP
    """
    _check_recipe(epochs, warmup, train_kwargs)
    batch_size = batch_size or (SCRATCH_BATCH if len(data.y_train) >= 10_000 else 64)
    lr = SCRATCH_LR * batch_size / SCRATCH_BATCH if lr is None else lr
    steps = math.ceil(len(data.y_train) / batch_size) * epochs
    with _strategy_of(model).scope():
        model.compile(optimizer=recipe_optimizer(optimizer, lr, steps, warmup=warmup,
                                                 weight_decay=weight_decay),
                      loss=LOSS, metrics=["accuracy"])
    recipe = {"lr": lr, "weight_decay": weight_decay, "warmup": warmup, "optimizer": optimizer,
              "batch_size": batch_size, "augment": "crop+flip" if augment else None,
              "schedule": "warmup+cosine"}
    return train_with_recipe(model, data, epochs=epochs, batch_size=batch_size, lr=lr,
                             augment=augment, recipe=recipe, **train_kwargs)
