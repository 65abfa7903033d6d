"""Training a CNN from scratch with the recipe that measured best: the fair baseline.

A transfer model should be compared with a from-scratch model trained as well
as the same minutes allow, not with a textbook CNN at a constant learning
rate. The recipe: :func:`~transferkit.models.build_baseline_cnn` with
``residual=True`` (ResNet-9 style), AdamW with weight decay, a linear warm-up
over the first 10 % of steps then cosine decay to 0, and random crop + flip
made in NumPy outside the compiled step. Figures: ``docs/results.md``.
"""

from __future__ import annotations

import keras

from transferkit.data import DataSplits
from transferkit.finetune import _check_recipe, compile_recipe
from transferkit.runs import Run
from transferkit.training import train_with_recipe

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
    label_smoothing: float = 0.0,
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
        label_smoothing: Smooth the one-hot targets by this much; 0: plain cross-entropy.
        **train_kwargs: Passed to :func:`~transferkit.training.train`
            (``run_dir``, ``patience``, ``seed``, ``name``, ``verbose`` ...).

    Returns:
        The :class:`~transferkit.training.Run`.

    Example:
        >>> cnn = build_baseline_cnn(10, residual=True)  # doctest: +SKIP
        >>> run = train_from_scratch(cnn, data, epochs=10)  # doctest: +SKIP
    """
    _check_recipe(epochs, warmup, train_kwargs)
    recipe = compile_recipe(model, data, epochs=epochs, batch_size=batch_size, lr=lr,
                            base_lr=SCRATCH_LR, base_batch=SCRATCH_BATCH, warmup=warmup,
                            weight_decay=weight_decay, optimizer=optimizer, augment=augment,
                            label_smoothing=label_smoothing)
    return train_with_recipe(model, data, epochs=epochs, batch_size=recipe["batch_size"],
                             lr=recipe["lr"], augment=augment, recipe=recipe, **train_kwargs)
