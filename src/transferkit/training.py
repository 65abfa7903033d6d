"""Training on top of ``model.fit``: :func:`train` and the recipes' shared core.

:func:`train` compiles if needed, feeds uint8 batches, and, when the
backbone is frozen and nothing augments the images, trains the head on
backbone features computed once (``cache_features``). The head layers are
shared with the full model, so the full model ends up holding the trained
head. Every call returns a :class:`~transferkit.runs.Run`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from transferkit import _backend
from transferkit._progress import progress_verbose
from transferkit._validation import check_scalar
from transferkit.augment import AugmentedBatches
from transferkit.callbacks import (
    BACKUP_DIR,
    BEST_MODEL_FILE,
    HISTORY_FILE,
    default_callbacks,
    lr_callback,
    metric_mode,
    read_history,
)
from transferkit.data import DataSplits
from transferkit.data.splits import SPLITS
from transferkit.errors import ConfigurationError, DataError
from transferkit.evaluation import evaluate, evaluate_predictions
from transferkit.features import extract_features
from transferkit.losses import LOSS
from transferkit.models import check_model_input, find_backbone, split_at_pool
from transferkit.runs import (
    MODEL_FILE,
    PREDICTIONS_FILE,
    RUN_FILE,
    Run,
    prepare_run_dir,
    run_config,
)

logger = logging.getLogger("transferkit")

__all__ = ["LOSS", "MODEL_FILE", "PREDICTIONS_FILE", "RUN_FILE", "Run", "make_deterministic",
           "make_optimizer", "train", "train_with_recipe"]


# --------------------------------------------------------------------------- train


def train(
    model: keras.Model,
    data: DataSplits,
    *,
    epochs: int = 10,
    batch_size: int = 64,
    optimizer: str | keras.optimizers.Optimizer = "adam",
    lr: float = 1e-3,
    callbacks: list[keras.callbacks.Callback] | None = None,
    augment: bool | str = False,
    cache_features: bool | str = "auto",
    run_dir: str | os.PathLike | None = None,
    name: str | None = None,
    seed: int | None = None,
    patience: int | None = None,
    schedule: str | None = None,
    monitor: str = "val_accuracy",
    overwrite: bool = False,
    resume: bool = False,
    compile: bool | None = None,
    verbose: int | str = "auto",
) -> Run:
    """Train a model on ``data`` and evaluate it on the test split.

    Args:
        model: A model from :func:`~transferkit.models.build_transfer_model` or
            :func:`~transferkit.models.build_baseline_cnn` (or any Keras
            classifier taking raw images; caching then needs its ``pool`` layer).
        data: The dataset; its image shape must match the model input.
        epochs: Epochs to train.
        batch_size: Images per batch.
        optimizer: Optimizer name or instance (used when compiling).
        lr: Learning rate (used when compiling with an optimizer name).
        callbacks: Extra Keras callbacks. With cached features they are
            given the head model, which shares its layers with ``model``.
        augment: ``True``: random crop + horizontal flip of every training
            batch (in NumPy, outside the model), which disables feature
            caching. ``"flip"``: horizontal flips only; with a frozen backbone
            the head then trains on cached features of each image and of its
            mirror image (twice the extraction time).
        cache_features: ``"auto"`` caches whenever the backbone is frozen and
            ``augment`` is off; ``True`` requires it; ``False`` never caches.
        run_dir: Folder for history, checkpoints, backup and the run record.
            Enables the default callbacks (see
            :func:`~transferkit.callbacks.default_callbacks`).
        name: Run name; default: the model name.
        seed: Seed for Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)
            covering shuffling, dropout and augmentation. Weights are initialised
            when the model is built: call ``keras.utils.set_random_seed(seed)``
            before building it for fully repeatable runs.
        patience: Early-stopping patience (restores the best weights); None: off.
        schedule: ``"cosine"``, ``"step"`` or ``"plateau"`` learning-rate schedule.
        monitor: Metric for checkpointing and early stopping; falls back to
            the training metric when there is no validation split.
        overwrite: Replace an existing run in ``run_dir``.
        resume: Continue an interrupted run in ``run_dir`` from its backup.
        compile: Compile the model; default: only if it is not compiled yet.
        verbose: Keras progress-bar setting.

    Returns:
        The :class:`Run`; ``run.model`` is ``model``.

    Raises:
        DataError: If the data does not match the model.
        ConfigurationError: For bad arguments, or ``cache_features=True``
            where caching is not valid.
        RunDirectoryExistsError: If ``run_dir`` holds a run and neither
            ``overwrite`` nor ``resume`` is set.

    Example:
        >>> model = build_transfer_model(num_classes=data.num_classes)  # doctest: +SKIP
        >>> run = train(model, data, epochs=5, run_dir="runs/frozen")  # doctest: +SKIP
        >>> run.evaluation.accuracy  # doctest: +SKIP
    """
    return _train(
        model, data, epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr,
        callbacks=callbacks, augment=augment, cache_features=cache_features, run_dir=run_dir,
        name=name, seed=seed, patience=patience, schedule=schedule, monitor=monitor,
        overwrite=overwrite, resume=resume, compile=compile, verbose=verbose,
    )


def check_recipe_kwargs(train_kwargs: dict) -> None:
    """Refuse :func:`train` options that a recipe sets itself."""
    for key in ("cache_features", "compile", "phases", "recipe", "optimizer", "lr"):
        if key in train_kwargs:
            raise ConfigurationError(f"This recipe does not take {key}= as a train option.")
    if train_kwargs.get("schedule") is not None:
        raise ConfigurationError("This recipe has its own warm-up + cosine schedule per step; "
                                 "schedule= is for train().")


def train_with_recipe(model: keras.Model, data: DataSplits, *, epochs: int, batch_size: int,
                      lr: float, augment: bool, recipe: dict, phases=None, **train_kwargs) -> Run:
    """:func:`train` of a model its recipe compiled: records ``recipe`` in the run's config.

    For recipe functions (:func:`~transferkit.finetune.fine_tune`,
    :func:`~transferkit.scratch.train_from_scratch`); ``train_kwargs`` are
    :func:`train`'s remaining options.
    """
    check_recipe_kwargs(train_kwargs)
    options = {"callbacks": None, "run_dir": None, "name": None, "seed": None, "patience": None,
               "schedule": None, "monitor": "val_accuracy", "overwrite": False, "resume": False,
               "verbose": "auto", **train_kwargs}
    return _train(model, data, epochs=epochs, batch_size=batch_size, optimizer=model.optimizer,
                  lr=lr, augment=augment, cache_features=False, compile=False, phases=phases,
                  recipe=recipe, prefix=(recipe or {}).get("cached_prefix"), **options)


@dataclass
class _Plan:
    """What every fit path shares: the full model, the budget, callbacks and run folder."""

    model: keras.Model
    epochs: int
    batch_size: int
    callbacks: list | None
    run_path: Path | None
    monitor: str
    patience: int | None
    schedule: str | None
    seed: int | None
    verbose: int | str

    def backup(self, phase: int | None = None) -> Path | None:
        if self.run_path is None:
            return None
        return self.run_path / BACKUP_DIR / (f"phase{phase}" if phase is not None else "")


def _train(model, data, *, epochs, batch_size, optimizer, lr, callbacks, augment, cache_features,
           run_dir, name, seed, patience, schedule, monitor, overwrite, resume, compile, verbose,
           phases=None, recipe=None, prefix=None) -> Run:
    # phases: [(model to fit, last epoch)], views sharing ``model``'s weights
    # (progressive resizing); None: ``model`` for every epoch. prefix: a frozen
    # backbone layer whose activations are cached (transferkit.prefix).
    started = time.perf_counter()
    _check_train_args(model, data, epochs, batch_size, cache_features)
    _backend.check_data_parallel(batch_size, [len(data.split(s)[1]) for s in SPLITS])
    logger.info("== %s: %d epoch%s on %d training images ==", name or model.name, epochs,
                "s" if epochs != 1 else "", len(data.y_train))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if not len(data.y_val) and monitor.startswith("val_"):
        monitor = monitor[4:]
    plan = _Plan(model, epochs, batch_size, callbacks,
                 prepare_run_dir(run_dir, overwrite=overwrite, resume=resume), monitor,
                 patience, schedule, seed, progress_verbose(verbose))
    with _backend.distribution_scope(model):
        if compile or (compile is None and not getattr(model, "compiled", False)):
            model.compile(optimizer=make_optimizer(optimizer, lr), loss=LOSS, metrics=["accuracy"])
    cached = prefix is None and _use_cache(model, augment, cache_features)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    if prefix is not None:
        history, evaluate_on = _fit_prefix(plan, data, prefix, timings)
    elif cached:
        history, evaluate_on = _fit_cached(plan, data, timings, flip=augment == "flip")
    else:
        history, evaluate_on = _fit_streamed(plan, data, augment, phases or [(model, epochs)])
    timings["fit"] = time.perf_counter() - t - timings.get("features", 0.0)
    t = time.perf_counter()
    evaluation = evaluate_on() if len(data.y_test) else None
    timings["evaluate"] = time.perf_counter() - t
    if plan.run_path is not None:
        history = read_history(plan.run_path / HISTORY_FILE) or history
    timings["total"] = time.perf_counter() - started
    run = Run(
        name=name or model.name,
        config=run_config(
            model, data, optimizer=model.optimizer,
            lr=recipe["lr"] if recipe else _current_lr(model, lr), epochs=epochs,
            batch_size=batch_size, augment=augment, cached=cached, seed=seed,
            schedule=schedule, patience=patience,
        ) | ({"recipe": recipe} if recipe else {}),
        history=history,
        evaluation=evaluation,
        timings={k: round(v, 3) for k, v in timings.items()},
        model=model,
    )
    if plan.run_path is not None:
        run.artifacts.update({"history": HISTORY_FILE, "best_model": BEST_MODEL_FILE})
        run.save(plan.run_path)
    return run


def _fit(plan: _Plan, fitted: keras.Model, train_data: dict, val, *, start: int = 0,
         end: int | None = None, backup: Path | None = None) -> dict[str, list[float]]:
    """The one fit core: every path (cached head, cached prefix, streamed, phases) ends here.

    ``fitted`` is ``plan.model`` or a model sharing its layers (head, suffix,
    resolution view); checkpoints always save the full model.
    """
    end = end or plan.epochs
    restore = backup or plan.backup()
    if restore is not None and restore.exists():
        x = train_data["x"]
        steps = len(x) if isinstance(x, keras.utils.PyDataset) else -(-len(x) // plan.batch_size)
        _restore_iterations(fitted, restore, steps)  # the per-step learning-rate schedule
    cbs = list(plan.callbacks or [])
    base_lr = _current_lr(fitted, None)
    if plan.run_path is not None:
        cbs += default_callbacks(
            plan.run_path, monitor=plan.monitor, patience=plan.patience, schedule=plan.schedule,
            base_lr=base_lr, epochs=end, backup_dir=backup,
            checkpoint_model=None if fitted is plan.model else plan.model,
        )
    else:
        if plan.patience is not None:
            cbs.append(keras.callbacks.EarlyStopping(
                monitor=plan.monitor, mode=metric_mode(plan.monitor), patience=plan.patience,
                restore_best_weights=True))
        if plan.schedule is not None:
            cbs.append(lr_callback(plan.schedule, base_lr, end))
    if isinstance(train_data["x"], keras.utils.PyDataset):
        train_data = {**train_data, "x": _backend.fit_input(train_data["x"])}
    fit = fitted.fit(**train_data, validation_data=val, validation_batch_size=plan.batch_size,
                     initial_epoch=start, epochs=end, callbacks=cbs, verbose=plan.verbose)
    return {k: [float(v) for v in vals] for k, vals in fit.history.items()}


def _fit_streamed(plan: _Plan, data, augment, phases):
    # uint8 images reach fit as they are, through Keras' own data path, on
    # every backend; the model converts each batch. Augmentation: crop + flip
    # in NumPy, outside the compiled step; _fit hands the batches to fit
    # through _backend.fit_input (steady epochs on TensorFlow).
    if augment:
        batches = AugmentedBatches(data.x_train, data.y_train, plan.batch_size,
                                   seed=plan.seed or 0,
                                   augment="flip" if augment == "flip" else True)
        train_data = {"x": batches, "shuffle": False}  # it reshuffles itself
    else:
        train_data = {"x": data.x_train, "y": data.y_train, "batch_size": plan.batch_size,
                      "shuffle": True}
    val = (data.x_val, data.y_val) if len(data.y_val) else None
    if len(phases) == 1 and phases[0][0] is plan.model:
        history = _fit(plan, plan.model, train_data, val)
    else:
        history = _fit_phases(plan, phases, train_data, val)
    return history, lambda: evaluate(plan.model, data, "test")


def _fit_prefix(plan: _Plan, data, layer, timings):
    from transferkit.prefix import prepare_prefix  # it builds on models and data only

    suffix, train_data, val = prepare_prefix(plan.model, data, layer,
                                             batch_size=plan.batch_size, seed=plan.seed,
                                             timings=timings)
    history = _fit(plan, suffix, train_data, val)
    return history, lambda: evaluate(plan.model, data, "test")  # the full model


def _fit_phases(plan: _Plan, phases, train_data, val) -> dict[str, list[float]]:
    """Fit each view in turn (they share the model's weights and optimizer).

    Each phase keeps its own backup folder until the run ends, so a resumed
    run restores every finished phase's end state and skips its epochs.
    """
    history: dict[str, list[float]] = {}
    start = 0
    for index, (view, end) in enumerate(phases):
        part = _fit(plan, view, train_data, val, start=start, end=end, backup=plan.backup(index))
        for key, values in part.items():
            history.setdefault(key, []).extend(values)
        if view.stop_training:
            break
        start = end
    if plan.run_path is not None:
        shutil.rmtree(plan.run_path / BACKUP_DIR, ignore_errors=True)
    return history


def _restore_iterations(view, backup: Path, steps_per_epoch: int) -> None:
    # A backup restores weights, not the optimizer's step count, which drives a
    # per-step learning-rate schedule: set it from the saved epoch.
    meta = backup / "training_metadata.json"
    if meta.exists() and view.optimizer is not None:
        epoch = json.loads(meta.read_text(encoding="utf-8")).get("epoch", 0)
        view.optimizer.iterations.assign(int(epoch) * steps_per_epoch)


def _fit_cached(plan: _Plan, data, timings, flip=False):
    model = plan.model
    logger.info("Backbone frozen: training the head on cached features%s.",
                " of each image and its mirror image" if flip else "")
    t = time.perf_counter()
    feats = {s: extract_features(model, data, s, verbose=plan.verbose)
             for s in ("train", "val", "test") if len(data.split(s)[1])}
    y_train = data.y_train
    if flip:  # the mirror images' features: a second view the head trains on
        mirrored = extract_features(model, data, "train", verbose=plan.verbose, flip=True)
        feats["train"] = np.concatenate([feats["train"], mirrored])
        y_train = np.concatenate([y_train, y_train])
    timings["features"] = time.perf_counter() - t
    with _backend.distribution_scope(model):
        _, head = split_at_pool(model)
        head.compile_from_config(model.get_compile_config())
    val = (feats["val"], data.y_val) if "val" in feats else None
    # Arrays through Keras' own path: it reshuffles every epoch on every backend.
    train_data = {"x": feats["train"], "y": y_train, "batch_size": plan.batch_size,
                  "shuffle": True}
    history = _fit(plan, head, train_data, val)
    if not model.optimizer.built:
        # The head trained with its own optimizer; build the full model's so a
        # saved .keras file reloads without an optimizer-variable mismatch.
        with _backend.distribution_scope(model):
            model.optimizer.build(model.trainable_variables)

    def score():
        probs = head.predict(feats["test"], batch_size=1024, verbose=0)
        return evaluate_predictions(data.y_test, probs, data.class_names)

    return history, score


def _check_train_args(model, data, epochs, batch_size, cache_features) -> None:
    if not isinstance(data, DataSplits):
        raise DataError(f"data must be a DataSplits, got {type(data).__name__}.")
    check_scalar(epochs, "epochs", int, min_val=1)
    check_scalar(batch_size, "batch_size", int, min_val=1)
    if cache_features not in (True, False, "auto"):
        raise ConfigurationError(
            f"cache_features must be True, False or 'auto', got {cache_features!r}."
        )
    check_model_input(model, data.x_train)
    units = model.output_shape[-1]
    if units != data.num_classes:
        raise DataError(
            f"Model {model.name!r} outputs {units} classes but the data has "
            f"{data.num_classes} ({', '.join(data.class_names)})."
        )


def _use_cache(model, augment: bool | str, cache_features: bool | str) -> bool:
    if cache_features is False:
        return False
    reason = None
    if augment and augment != "flip":
        reason = "augmentation changes the images every epoch"
    else:
        try:
            base = find_backbone(model)
            split_at_pool(model)
            if base.trainable_weights:
                reason = "the backbone has trainable weights"
        except ConfigurationError as exc:
            reason = str(exc)
    if reason is None:
        return True
    if cache_features is True:
        raise ConfigurationError(f"Cannot cache features: {reason}.")
    return False


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
        >>> make_optimizer("adam", 1e-4).learning_rate.numpy().round(6)  # doctest: +SKIP
        1e-04
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


def _current_lr(model, default):
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return default




def make_deterministic(seed: int = 0) -> None:
    """Make the next model builds and runs repeatable: same seed, same data, same machine.

    Seeds Python, NumPy and the backend (``keras.utils.set_random_seed``),
    which fixes weight initialisation, shuffling, dropout and augmentation,
    and asks the backend for deterministic kernels
    (:func:`transferkit._backend.enable_determinism`; it matters on GPU, where
    some reductions are otherwise non-deterministic; on CPU the default
    kernels are already repeatable). Call it before building the models.

    Args:
        seed: The seed.

    Example:
        >>> make_deterministic(0)
        >>> model = build_baseline_cnn(10)  # doctest: +SKIP
    """
    keras.utils.set_random_seed(seed)
    _backend.enable_determinism()


def __getattr__(name: str):
    # two_stage builds on train(): it lives in its own module and is re-exported lazily.
    if name in ("two_stage", "TwoStageResult"):
        from transferkit import twostage

        return getattr(twostage, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
