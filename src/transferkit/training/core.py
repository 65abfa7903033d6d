"""The one fit core: every fast path ends in :func:`fit`, which calls ``model.fit``.

It adds the run folder's callbacks (history, backup, best checkpoint,
early stopping, schedule), restores a resumed run's step count, and hands
NumPy batch streams to Keras through :func:`transferkit._backend.fit_input`
(steady epochs on TensorFlow).
"""

from __future__ import annotations

import json
from pathlib import Path

import keras

from transferkit import _backend
from transferkit._diskarray import is_on_disk
from transferkit.data.augment import AugmentedBatches
from transferkit.data.batches import StreamBatches
from transferkit.data.stream import ImageFiles
from transferkit.runs.evaluation import evaluate
from transferkit.runs.record import metric_mode
from transferkit.training.budget import plan_budget
from transferkit.training.callbacks import default_callbacks, lr_callback
from transferkit.training.eta import RunETA
from transferkit.training.plan import Plan


def fit(plan: Plan, fitted: keras.Model, train_data: dict, val, *, start: int = 0,
        end: int | None = None, backup: Path | None = None) -> dict[str, list[float]]:
    """Fit ``fitted`` from epoch ``start`` to ``end`` and return its history.

    ``fitted`` is ``plan.model`` or a model sharing its layers (head, suffix,
    resolution view); checkpoints always save the full model. With a budget,
    a few timed steps choose ``end`` (:func:`~transferkit.training.budget.plan_budget`).
    """
    end = end or plan.epochs
    x = train_data["x"]
    steps = len(x) if isinstance(x, keras.utils.PyDataset) else -(-len(x) // plan.batch_size)
    restore = backup or plan.backup()
    if restore is not None and restore.exists():
        _restore_iterations(fitted, restore, steps)  # the per-step learning-rate schedule
    if isinstance(x, keras.utils.PyDataset):
        train_data = {**train_data, "x": _backend.fit_input(x)}
    if plan.class_weight is not None:
        # Keras weights each sample's loss by its class on arrays, PyDatasets and tf.data
        # alike; the budget's timed steps take the same inputs.
        train_data = {**train_data, "class_weight": plan.class_weight}
    callbacks = list(plan.options.callbacks or [])
    if plan.budget is not None:
        keeper = plan_budget(
            fitted, train_data, val, budget=plan.budget, steps_per_epoch=steps,
            batch_size=plan.batch_size, max_epochs=end, test=_test_probe(plan),
            describe=_describe(plan))
        plan.budget_keeper, end = keeper, keeper.fit_epochs
        callbacks.insert(0, keeper)  # first: the others' epoch-end work counts as overhead
    elif plan.verbose:
        callbacks.append(RunETA(end, steps_per_epoch=steps, validation_images=len(plan.data.y_val),
                                batch_size=plan.batch_size))
    callbacks += _run_callbacks(plan, fitted, end, backup)
    history = fitted.fit(**train_data, validation_data=val, validation_batch_size=plan.batch_size,
                         initial_epoch=start, epochs=end, callbacks=callbacks,
                         verbose=plan.verbose)
    return {k: [float(v) for v in values] for k, values in history.history.items()}


class Streamed:
    """No fast path: the (augmented) images go to ``fit`` every epoch."""

    name = "streamed"

    def fit(self, plan: Plan, timings: dict):
        train_data, val = image_inputs(plan)
        history = fit(plan, plan.model, train_data, val)
        return history, lambda: evaluate(plan.model, plan.data, "test")


def _test_probe(plan: Plan):
    """What the test evaluation runs: (its own model, or None for the fitted one, test images)."""
    return plan.test_model, plan.data.x_test


def _describe(plan: Plan) -> str:
    size = getattr(plan.model, "resize_size", None) or plan.data.x_train.shape[1]
    return f" at {size} px"


def _run_callbacks(plan: Plan, fitted: keras.Model, end: int, backup: Path | None) -> list:
    options = plan.options
    base_lr = current_lr(fitted, None)
    if plan.run_path is not None:
        return default_callbacks(
            plan.run_path, monitor=plan.monitor, patience=options.patience,
            schedule=options.schedule, base_lr=base_lr, epochs=end, backup_dir=backup,
            checkpoint_model=None if fitted is plan.model else plan.model,
        )
    callbacks = []
    if options.patience is not None:
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=plan.monitor, mode=metric_mode(plan.monitor), patience=options.patience,
            restore_best_weights=True))
    if options.schedule is not None:
        callbacks.append(lr_callback(options.schedule, base_lr, end))
    return callbacks


def image_inputs(plan: Plan) -> tuple[dict, tuple | None]:
    """``fit`` inputs of the training images, augmented or not, and the validation data.

    uint8 images reach ``fit`` as they are, through Keras' own data path, on
    every backend; the model converts each batch. Augmentation: crop + flip in
    NumPy (photos: :func:`~transferkit.data.augment.photo_augment`), outside the
    compiled step.
    """
    data, augment = plan.data, plan.options.augment
    if augment:
        batches = AugmentedBatches(data.x_train, data.y_train, plan.batch_size,
                                   seed=plan.options.seed or 0, augment=augment)
        train_data = {"x": batches, "shuffle": False}  # it reshuffles itself
    elif isinstance(data.x_train, ImageFiles):  # streamed from disk, decoded a batch at a time
        train_data = {"x": StreamBatches(data.x_train, data.y_train, plan.batch_size,
                                         shuffle=True, seed=plan.options.seed or 0),
                      "shuffle": False}
    else:
        train_data = {"x": data.x_train, "y": data.y_train, "batch_size": plan.batch_size,
                      "shuffle": True}
    return train_data, validation_input(data.x_val, data.y_val, plan.batch_size)


def validation_input(x, y, batch_size: int):
    """``fit``'s ``validation_data``: the arrays, or batches where they stay on disk; None if empty.

    Keras copies validation arrays into the backend whole; streamed images and
    memory-mapped features go as :class:`~transferkit.data.batches.StreamBatches`.
    """
    if not len(y):
        return None
    if isinstance(x, ImageFiles) or is_on_disk(x):
        return StreamBatches(x, y, batch_size)
    return x, y


def _restore_iterations(view, backup: Path, steps_per_epoch: int) -> None:
    # A backup restores weights, not the optimizer's step count, which drives a
    # per-step learning-rate schedule: set it from the saved epoch.
    meta = backup / "training_metadata.json"
    if meta.exists() and view.optimizer is not None:
        epoch = json.loads(meta.read_text(encoding="utf-8")).get("epoch", 0)
        view.optimizer.iterations.assign(int(epoch) * steps_per_epoch)


def current_lr(model: keras.Model, default):
    """The optimizer's learning rate now, as a float, or ``default`` where there is none."""
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):
        return default
