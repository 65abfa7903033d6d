"""Two-stage transfer: train a CNN on some classes, then transfer its conv block to others."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import keras

from transferkit.data.splits import DataSplits
from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_baseline_cnn, build_transfer_model
from transferkit.models.classifier import BaselineCNN
from transferkit.runs.record import Run
from transferkit.training.recipes import train_from_scratch
from transferkit.training.train import train


@dataclass
class TwoStageResult:
    """The runs of :func:`two_stage`: the source task, the frozen transfer, the fine-tuned one."""

    first: Run
    second: Run
    fine_tuned: Run | None = None


def warm_start(source: keras.Model, num_classes: int, *, name: str = "warm_started_cnn") -> BaselineCNN:
    """The same CNN for ``num_classes`` classes, its ``features`` block starting from ``source``'s weights.

    Only the head is new. Everything in the block trains, BatchNorm included
    (its statistics adapt to the new classes), so training the result with
    :func:`~transferkit.training.recipes.train_from_scratch` differs from training the
    same network from scratch in nothing but the starting weights.

    Args:
        source: A trained :class:`~transferkit.models.classifier.BaselineCNN`.
        num_classes: Classes of the new task.
        name: Name of the new model.

    Returns:
        A new :class:`~transferkit.models.classifier.BaselineCNN`.

    Example:
        >>> src = build_baseline_cnn(7, residual=True)
        >>> new = warm_start(src, 3)
        >>> new.output_shape, new.backbone.trainable
        ((None, 3), True)
        >>> all((a == b).all() for a, b in zip(new.backbone.get_weights(), src.backbone.get_weights()))
        True
    """
    _check_warm_startable(source)
    config = {**source.get_config(), "num_classes": num_classes, "name": name, "freeze": False}
    model = BaselineCNN.from_config(config)
    model.backbone.set_weights(source.backbone.get_weights())
    return model


def _check_warm_startable(source: keras.Model) -> None:
    if not isinstance(source, BaselineCNN):
        raise ConfigurationError(
            f"warm_start needs a BaselineCNN (build_baseline_cnn), got {type(source).__name__}; "
            "for another network, transfer its block with build_transfer_model."
        )


def two_stage(
    data: DataSplits,
    first_classes,
    second_classes,
    *,
    epochs: int = 10,
    second_epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    head: tuple[int, ...] = (128,),
    dropout: float = 0.3,
    seed: int | None = None,
    run_dir: str | os.PathLike | None = None,
    verbose: int | str = "auto",
    cnn: keras.Model | None = None,
    first_recipe: bool = False,
    fine_tune: bool = False,
    **train_kwargs,
) -> TwoStageResult:
    """Train a CNN on one class subset, then transfer its frozen conv part to another.

    Stage 1 trains a CNN (:func:`~transferkit.models.builders.build_baseline_cnn` unless
    ``cnn`` is given) on ``first_classes``. Stage 2 builds a new model whose
    backbone is a copy of stage 1's ``features`` block, frozen, with a new
    head for ``second_classes``.

    Args:
        data: The full dataset.
        first_classes: Classes of the source task (names or indices).
        second_classes: Classes of the target task.
        epochs: Epochs of stage 1.
        second_epochs: Epochs of stage 2 (default: ``epochs``).
        batch_size: Images per batch in every stage; default: each stage's
            own default (64 for :func:`~transferkit.training.train.train`, the
            recipe's for :func:`~transferkit.training.recipes.train_from_scratch`).
        lr: Learning rate (the peak of a recipe's schedule) of every stage;
            default: each stage's own default, as for ``batch_size``.
        head: Head of the stage-2 model.
        dropout: Dropout of the stage-2 head.
        seed: Seed of both stages.
        run_dir: Parent folder; stages go to ``stage1/`` and ``stage2/``.
        verbose: Keras progress-bar setting.
        cnn: The stage-1 model (its output must fit ``first_classes``; it needs
            a ``features`` block, as :func:`~transferkit.models.builders.build_baseline_cnn` has).
        first_recipe: Train stage 1 with
            :func:`~transferkit.training.recipes.train_from_scratch` (AdamW, warm-up +
            cosine, crop + flip) instead of :func:`train`: a stronger source
            task gives a block worth transferring.
        fine_tune: Also train a third model: stage 1's network with a new
            head (:func:`warm_start`), trained whole, BatchNorm included, with
            :func:`~transferkit.training.recipes.train_from_scratch`'s recipe for
            ``second_epochs`` (``TwoStageResult.fine_tuned``). On 3 CIFAR-10
            classes it beat both the frozen block and the same CNN trained from
            scratch (docs/results.md, experiment 3).
        **train_kwargs: Passed to every training call.

    Returns:
        A :class:`TwoStageResult` with the runs.

    Example:
        ``data`` here is a small real CIFAR-10 subset of 4 classes: a CNN
        learns cat vs ship, then its frozen block serves automobile vs bird:

        >>> res = two_stage(data, ["cat", "ship"], ["automobile", "bird"], epochs=8,
        ...                 verbose=0)
        >>> res.second.evaluation.class_names, res.second.config["cached_features"]
        (['automobile', 'bird'], True)
        >>> res.first.evaluation.accuracy > 0.7, res.second.evaluation.accuracy > 0.6
        (True, True)
    """
    source, target = data.subset(first_classes), data.subset(second_classes)
    sub = (lambda s: Path(run_dir) / s) if run_dir is not None else (lambda s: None)
    # One set of options for every stage: lr and batch_size reach each one (None: its default).
    shared = {"seed": seed, "verbose": verbose, **train_kwargs,
              **{k: v for k, v in (("lr", lr), ("batch_size", batch_size)) if v is not None}}
    if seed is not None:
        keras.utils.set_random_seed(seed)
    first_model = cnn or build_baseline_cnn(source, name="stage1_cnn")
    if fine_tune:  # refused before stage 1 trains, not after
        _check_warm_startable(first_model)
    first_fit = train_from_scratch if first_recipe else train
    first = first_fit(first_model, source, epochs=epochs, run_dir=sub("stage1"), name="stage1",
                      **shared)
    second_model = build_transfer_model(
        first_model.get_layer("features"), target.num_classes, input_shape=data.image_shape,
        freeze=True, head=head, dropout=dropout, name="stage2_transfer",
    )
    second = train(second_model, target, epochs=second_epochs or epochs, run_dir=sub("stage2"),
                   name="stage2", **shared)
    fine_tuned = None
    if fine_tune:
        fine_tuned = train_from_scratch(
            warm_start(first_model, target.num_classes, name="stage2_finetuned_cnn"), target,
            epochs=second_epochs or epochs, run_dir=sub("stage2_finetuned"),
            name="stage2_finetuned", **shared,
        )
    return TwoStageResult(first, second, fine_tuned)
