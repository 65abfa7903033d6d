"""Training workflows on top of ``model.fit``: train, fine_tune, two_stage, and Run records.

:func:`train` compiles if needed, streams uint8 batches, and, when the
backbone is frozen and nothing augments the images, trains the head on
backbone features computed once (``cache_features``). The head layers are
shared with the full model, so the full model ends up holding the trained
head. Every call returns a :class:`Run` that records configuration, history,
evaluation and wall times, and saves to / loads from a folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from transferkit import __version__
from transferkit._atomic import (
    atomic_save_model,
    atomic_write,
    atomic_write_json,
    remove_stale_temp_files,
)
from transferkit._progress import progress_verbose
from transferkit.augment import AugmentedBatches
from transferkit.callbacks import (
    BACKUP_DIR,
    BEST_MODEL_FILE,
    HISTORY_FILE,
    default_callbacks,
    lr_callback,
    read_history,
    repair_history,
)
from transferkit.data import DataSplits
from transferkit.errors import (
    ConfigurationError,
    DataError,
    DataNotFoundError,
    RunDirectoryExistsError,
)
from transferkit.evaluation import Evaluation, evaluate, evaluate_predictions
from transferkit.features import extract_features
from transferkit.models import (
    build_baseline_cnn,
    build_transfer_model,
    check_model_input,
    find_backbone,
    parameter_counts,
    split_at_pool,
)

logger = logging.getLogger("transferkit")

RUN_FILE = "run.json"
MODEL_FILE = "model.keras"
PREDICTIONS_FILE = "predictions.npz"
LOSS = "sparse_categorical_crossentropy"


@dataclass
class Run:
    """The record of one training run.

    Attributes:
        name: Run name.
        config: Backbone, freeze state, parameter counts, optimizer, learning
            rate, epochs, batch size, image size, seed, data, library versions.
        history: ``{metric: [value per epoch]}`` as ``model.fit`` reports it.
        evaluation: Test-split :class:`~transferkit.evaluation.Evaluation`.
        timings: Wall seconds per phase (``features``, ``fit``, ``evaluate``, ``total``).
        artifacts: Paths of files written (model, history, checkpoint).
        model: The trained model (not serialised into ``run.json``).
    """

    name: str
    config: dict
    history: dict[str, list[float]]
    evaluation: Evaluation | None
    timings: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    model: keras.Model | None = field(default=None, repr=False, compare=False)

    def __repr__(self) -> str:
        score = f"test_accuracy={self.evaluation.accuracy:.4f}, " if self.evaluation else ""
        total = self.timings.get("total")
        took = f", {total:.0f} s" if total is not None else ""
        return f"Run({self.name!r}, {score}epochs={self.epochs_run}{took})"

    @property
    def epochs_run(self) -> int:
        """Number of epochs actually run (early stopping may cut it short)."""
        return max((len(v) for v in self.history.values()), default=0)

    def best_epoch(self, metric: str = "val_accuracy") -> tuple[int | None, float | None]:
        """``(epoch index, value)`` of the best value of ``metric`` (min for losses)."""
        values = [v for v in self.history.get(metric, [])]
        valid = [(i, v) for i, v in enumerate(values) if not np.isnan(v)]
        if not valid:
            return None, None
        pick = min if "loss" in metric else max
        return pick(valid, key=lambda iv: iv[1])

    def to_dict(self) -> dict:
        """JSON-serialisable record (without per-image predictions)."""
        return {
            "name": self.name,
            "config": self.config,
            "history": self.history,
            "evaluation": (
                self.evaluation.to_dict(include_predictions=False) if self.evaluation else None
            ),
            "timings": self.timings,
            "artifacts": self.artifacts,
        }

    def save(self, directory: str | os.PathLike, *, save_model: bool = True) -> Path:
        """Write ``run.json``, ``predictions.npz`` and ``model.keras`` (atomically).

        Args:
            directory: Destination folder (created if missing).
            save_model: Also save :attr:`model` when it is set.

        Returns:
            The folder.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        if save_model and self.model is not None:
            atomic_save_model(self.model, directory / MODEL_FILE)
            self.artifacts["model"] = MODEL_FILE
        if self.evaluation is not None and self.evaluation.y_true:
            ev = self.evaluation
            atomic_write(
                directory / PREDICTIONS_FILE,
                lambda tmp: _save_npz(
                    tmp, y_true=ev.y_true, y_pred=ev.y_pred, probabilities=ev.probabilities
                ),
            )
            self.artifacts["predictions"] = PREDICTIONS_FILE
        atomic_write_json(directory / RUN_FILE, self.to_dict())
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike, *, load_model: bool = True) -> Run:
        """Load a run saved by :meth:`save` (or by :func:`train` with ``run_dir``).

        Args:
            directory: The run folder.
            load_model: Also load ``model.keras`` when present.

        Returns:
            The :class:`Run`.

        Raises:
            DataNotFoundError: If the folder holds no ``run.json``.
        """
        directory = Path(directory)
        path = directory / RUN_FILE
        if not path.exists():
            raise DataNotFoundError(f"{directory} holds no {RUN_FILE}: not a transferkit run.")
        d = json.loads(path.read_text(encoding="utf-8"))
        evaluation = None
        if d.get("evaluation"):
            ev = dict(d["evaluation"])
            preds = directory / PREDICTIONS_FILE
            if preds.exists():
                with np.load(preds) as z:
                    ev.update({k: z[k].tolist() for k in ("y_true", "y_pred", "probabilities")})
            evaluation = Evaluation.from_dict(ev)
        model = None
        if load_model and (directory / MODEL_FILE).exists():
            model = keras.saving.load_model(directory / MODEL_FILE)
        return cls(
            name=d["name"],
            config=d["config"],
            history=d["history"],
            evaluation=evaluation,
            timings=d["timings"],
            artifacts=d.get("artifacts", {}),
            model=model,
        )


def _save_npz(path: str, **arrays) -> None:
    with open(path, "wb") as f:
        np.savez_compressed(f, **{k: np.asarray(v) for k, v in arrays.items()})


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


def _train(model, data, *, epochs, batch_size, optimizer, lr, callbacks, augment, cache_features,
           run_dir, name, seed, patience, schedule, monitor, overwrite, resume, compile, verbose,
           phases=None, recipe=None, prefix=None) -> Run:
    # phases: [(model to fit, last epoch)], views sharing ``model``'s weights
    # (progressive resizing); None: ``model`` for every epoch. prefix: a frozen
    # backbone layer whose activations are cached (transferkit.prefix).
    started = time.perf_counter()
    _check_train_args(model, data, epochs, batch_size, cache_features)
    verbose = progress_verbose(verbose)
    logger.info("== %s: %d epoch%s on %d training images ==", name or model.name, epochs,
                "s" if epochs != 1 else "", len(data.y_train))
    if seed is not None:
        keras.utils.set_random_seed(seed)
    run_path = _prepare_run_dir(run_dir, overwrite=overwrite, resume=resume)
    has_val = len(data.y_val) > 0
    if not has_val and monitor.startswith("val_"):
        monitor = monitor[4:]
    strategy = _strategy_of(model)
    with strategy.scope():
        if compile or (compile is None and not getattr(model, "compiled", False)):
            model.compile(
                optimizer=make_optimizer(optimizer, lr), loss=LOSS, metrics=["accuracy"]
            )
    cached = _use_cache(model, augment, cache_features)
    timings: dict[str, float] = {}
    if prefix is not None:
        history, evaluation = _fit_prefix(model, data, prefix, epochs, batch_size, callbacks,
                                          run_path, monitor, patience, schedule, seed, verbose,
                                          timings)
    elif cached:
        logger.info("Backbone frozen: training the head on cached features%s.",
                    " of each image and its mirror image" if augment == "flip" else "")
        history, evaluation = _fit_cached(
            model, data, strategy, epochs, batch_size, callbacks, run_path, monitor,
            patience, schedule, seed, verbose, timings, flip=augment == "flip",
        )
    else:
        history, evaluation = _fit_streamed(
            model, data, epochs, batch_size, callbacks, run_path, monitor, patience,
            schedule, augment, seed, verbose, timings, phases or [(model, epochs)],
        )
    if run_path is not None:
        history = read_history(run_path / HISTORY_FILE) or history
    timings["total"] = time.perf_counter() - started
    run = Run(
        name=name or model.name,
        config=_run_config(
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
    if run_path is not None:
        run.artifacts.update({"history": HISTORY_FILE, "best_model": BEST_MODEL_FILE})
        run.save(run_path)
    return run


def _fit_streamed(model, data, epochs, batch_size, callbacks, run_path, monitor, patience,
                  schedule, augment, seed, verbose, timings, phases):
    if augment:
        # Crop + flip in NumPy, outside the compiled step (fast on every backend).
        train_ds = AugmentedBatches(data.x_train, data.y_train, batch_size, seed=seed or 0,
                                    augment="flip" if augment == "flip" else True)
    else:
        train_ds = data.as_tf_dataset("train", batch_size, seed=seed or 0)
    val_ds = data.as_tf_dataset("val", batch_size) if len(data.y_val) else None
    t = time.perf_counter()
    if len(phases) == 1 and phases[0][0] is model:
        cbs = _callbacks(callbacks, run_path, monitor, patience, schedule, model, epochs, None)
        fit = model.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs,
                        verbose=verbose, shuffle=False)  # the dataset reshuffles itself
        history = _history(fit)
    else:
        history = _fit_phases(model, phases, train_ds, val_ds, callbacks, run_path, monitor,
                              patience, schedule, verbose)
    timings["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    evaluation = evaluate(model, data, "test") if len(data.y_test) else None
    timings["evaluate"] = time.perf_counter() - t
    return history, evaluation


def _fit_prefix(model, data, layer, epochs, batch_size, callbacks, run_path, monitor, patience,
                schedule, seed, verbose, timings):
    from transferkit.prefix import fit_on_prefix  # it builds on models and data only

    steps = -(-len(data.y_train) // batch_size)

    def make_callbacks(fitted):
        if run_path is not None and (run_path / BACKUP_DIR).exists():
            _restore_iterations(fitted, run_path / BACKUP_DIR, steps)  # the per-step schedule
        return _callbacks(callbacks, run_path, monitor, patience, schedule, fitted, epochs, model)

    t = time.perf_counter()
    fit, _ = fit_on_prefix(model, data, layer, epochs=epochs, batch_size=batch_size,
                           make_callbacks=make_callbacks, verbose=verbose, seed=seed,
                           timings=timings)
    timings["fit"] = time.perf_counter() - t - timings.get("features", 0.0)
    t = time.perf_counter()
    evaluation = evaluate(model, data, "test") if len(data.y_test) else None  # the full model
    timings["evaluate"] = time.perf_counter() - t
    return _history(fit), evaluation


def _fit_phases(model, phases, train_ds, val_ds, callbacks, run_path, monitor, patience,
                schedule, verbose) -> dict[str, list[float]]:
    """Fit each view in turn (they share ``model``'s weights and optimizer).

    Each phase keeps its own backup folder until the run ends, so a resumed
    run restores every finished phase's end state and skips its epochs.
    """
    history: dict[str, list[float]] = {}
    start = 0
    for index, (view, end) in enumerate(phases):
        backup = None if run_path is None else run_path / BACKUP_DIR / f"phase{index}"
        cbs = _callbacks(callbacks, run_path, monitor, patience, schedule, view, end, model,
                         backup_dir=backup)
        if backup is not None and backup.exists():
            _restore_iterations(view, backup, len(train_ds))
        fit = view.fit(train_ds, validation_data=val_ds, initial_epoch=start, epochs=end,
                       callbacks=cbs, verbose=verbose, shuffle=False)
        for key, values in _history(fit).items():
            history.setdefault(key, []).extend(values)
        if view.stop_training:
            break
        start = end
    if run_path is not None:
        shutil.rmtree(run_path / BACKUP_DIR, ignore_errors=True)
    return history


def _restore_iterations(view, backup: Path, steps_per_epoch: int) -> None:
    # A backup restores weights, not the optimizer's step count, which drives a
    # per-step learning-rate schedule: set it from the saved epoch.
    meta = backup / "training_metadata.json"
    if meta.exists() and view.optimizer is not None:
        epoch = json.loads(meta.read_text(encoding="utf-8")).get("epoch", 0)
        view.optimizer.iterations.assign(int(epoch) * steps_per_epoch)


def _fit_cached(model, data, strategy, epochs, batch_size, callbacks, run_path, monitor,
                patience, schedule, seed, verbose, timings, flip=False):
    import tensorflow as tf

    t = time.perf_counter()
    feats = {
        s: extract_features(model, data, s, verbose=verbose)
        for s in ("train", "val", "test")
        if len(data.split(s)[1])
    }
    y_train = data.y_train
    if flip:  # the mirror images' features: a second view the head trains on
        mirrored = extract_features(model, data, "train", verbose=verbose, flip=True)
        feats["train"] = np.concatenate([feats["train"], mirrored])
        y_train = np.concatenate([y_train, y_train])
    timings["features"] = time.perf_counter() - t
    with strategy.scope():
        _, head = split_at_pool(model)
        head.compile_from_config(model.get_compile_config())
    train_ds = (
        tf.data.Dataset.from_tensor_slices((feats["train"], y_train.astype(np.int32)))
        .shuffle(len(y_train), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )
    val_ds = None
    if "val" in feats:
        val_ds = tf.data.Dataset.from_tensor_slices(
            (feats["val"], data.y_val.astype(np.int32))
        ).batch(batch_size)
    cbs = _callbacks(callbacks, run_path, monitor, patience, schedule, head, epochs, model)
    t = time.perf_counter()
    fit = head.fit(train_ds, validation_data=val_ds, epochs=epochs, callbacks=cbs, verbose=verbose,
                   shuffle=False)  # the dataset reshuffles itself
    timings["fit"] = time.perf_counter() - t
    t = time.perf_counter()
    evaluation = None
    if "test" in feats:
        probs = head.predict(feats["test"], batch_size=1024, verbose=0)
        evaluation = evaluate_predictions(data.y_test, probs, data.class_names)
    timings["evaluate"] = time.perf_counter() - t
    if not model.optimizer.built:
        # The head trained with its own optimizer; build the full model's so a
        # saved .keras file reloads without an optimizer-variable mismatch.
        with strategy.scope():
            model.optimizer.build(model.trainable_variables)
    return _history(fit), evaluation


def _callbacks(extra, run_path, monitor, patience, schedule, fitted, epochs, full_model,
               backup_dir=None):
    cbs = list(extra or [])
    base_lr = _current_lr(fitted, None)
    if run_path is not None:
        return cbs + default_callbacks(
            run_path, monitor=monitor, patience=patience, schedule=schedule,
            base_lr=base_lr, epochs=epochs, checkpoint_model=full_model, backup_dir=backup_dir,
        )
    if patience is not None:
        cbs.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode="min" if "loss" in monitor else "max",
                patience=patience, restore_best_weights=True,
            )
        )
    if schedule is not None:
        cbs.append(lr_callback(schedule, base_lr, epochs))
    return cbs


def _history(fit) -> dict[str, list[float]]:
    return {k: [float(v) for v in vals] for k, vals in fit.history.items()}


def _check_train_args(model, data, epochs, batch_size, cache_features) -> None:
    if not isinstance(data, DataSplits):
        raise DataError(f"data must be a DataSplits, got {type(data).__name__}.")
    if not isinstance(epochs, int) or epochs < 1:
        raise ConfigurationError(f"epochs must be an int >= 1, got {epochs!r}.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be an int >= 1, got {batch_size!r}.")
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


def _prepare_run_dir(run_dir, *, overwrite: bool, resume: bool) -> Path | None:
    if run_dir is None:
        return None
    if overwrite and resume:
        raise ConfigurationError("Pass overwrite=True or resume=True, not both.")
    path = Path(run_dir)
    markers = [path / RUN_FILE, path / HISTORY_FILE, path / BACKUP_DIR]
    if any(m.exists() for m in markers):
        if overwrite:
            shutil.rmtree(path)
        elif not resume:
            raise RunDirectoryExistsError(
                f"{path} already holds a run. Pass overwrite=True to replace it or "
                "resume=True to continue it."
            )
        else:
            for stale in remove_stale_temp_files(path):
                logger.info("Removed %s, left by an interrupted save", stale)
            repair_history(path / HISTORY_FILE)
    path.mkdir(parents=True, exist_ok=True)
    return path


def _strategy_of(model):
    import tensorflow as tf

    return getattr(model, "distribute_strategy", None) or tf.distribute.get_strategy()


def make_deterministic(seed: int = 0) -> None:
    """Make the next model builds and runs repeatable: same seed, same data, same machine.

    Seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``), which
    fixes weight initialisation, shuffling, dropout and augmentation, and turns
    on ``tf.config.experimental.enable_op_determinism()``, which makes
    TensorFlow pick deterministic kernels (it matters on GPU, where some
    reductions are otherwise non-deterministic; on CPU the default kernels are
    already repeatable). Call it before building the models.

    Args:
        seed: The seed.

    Example:
        >>> make_deterministic(0)
        >>> model = build_baseline_cnn(10)  # doctest: +SKIP
    """
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


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
    if lr is not None and not is_schedule and not lr > 0:
        raise ConfigurationError(f"lr must be positive, got {lr!r}.")
    if weight_decay is not None and not weight_decay >= 0:
        raise ConfigurationError(f"weight_decay must be >= 0, got {weight_decay!r}.")
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


def _run_config(model, data, *, optimizer, lr, epochs, batch_size, augment, cached, seed,
                schedule, patience) -> dict:
    import tensorflow as tf

    try:
        base = find_backbone(model)
        layers = [x for x in base.layers if not isinstance(x, keras.layers.InputLayer)]
        trainable_layers = sum(1 for x in layers if x.trainable and x.weights) if base.trainable else 0
        backbone = {
            "name": base.name,
            "image_size": list(base.input_shape[1:3]),
            "layers": len(layers),
            "trainable_layers": trainable_layers,
            "frozen": not base.trainable_weights,
        }
    except ConfigurationError:
        backbone = None
    return {
        "model": model.name,
        "backbone": backbone,
        "params": parameter_counts(model),
        "input_shape": list(model.input_shape[1:]),
        "optimizer": type(optimizer).__name__ if optimizer is not None else None,
        "lr": lr,
        "schedule": schedule,
        "patience": patience,
        "epochs": epochs,
        "batch_size": batch_size,
        "augment": augment,
        "cached_features": cached,
        "seed": seed,
        "data": {
            "source": data.source,
            "class_names": list(data.class_names),
            "sizes": {s: int(len(data.split(s)[1])) for s in ("train", "val", "test")},
            "image_shape": list(data.image_shape),
            "provenance": dict(data.provenance),
            "test_labels_sha1": hashlib.sha1(np.asarray(data.y_test, np.int64).tobytes()).hexdigest(),
        },
        "versions": {
            "transferkit": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "machine": f"{platform.machine()} {os.cpu_count()} CPU cores, {_devices()}",
    }


def _devices() -> str:
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return f"{len(gpus)} GPU" if gpus else "no GPU"


# --------------------------------------------------------------------------- two-stage


@dataclass
class TwoStageResult:
    """Both runs of :func:`two_stage`: the source-task model and the transferred one."""

    first: Run
    second: Run


def two_stage(
    data: DataSplits,
    first_classes,
    second_classes,
    *,
    epochs: int = 10,
    second_epochs: int | None = None,
    batch_size: int = 64,
    lr: float = 1e-3,
    head: tuple[int, ...] = (128,),
    dropout: float = 0.3,
    seed: int | None = None,
    run_dir: str | os.PathLike | None = None,
    verbose: int | str = "auto",
    cnn: keras.Model | None = None,
    first_recipe: bool = False,
    **train_kwargs,
) -> TwoStageResult:
    """Train a CNN on one class subset, then transfer its frozen conv part to another.

    Stage 1 trains a CNN (:func:`~transferkit.models.build_baseline_cnn` unless
    ``cnn`` is given) on ``first_classes``. Stage 2 builds a new model whose
    backbone is a copy of stage 1's ``features`` block, frozen, with a new
    head for ``second_classes``.

    Args:
        data: The full dataset.
        first_classes: Classes of the source task (names or indices).
        second_classes: Classes of the target task.
        epochs: Epochs of stage 1.
        second_epochs: Epochs of stage 2 (default: ``epochs``).
        batch_size: Images per batch.
        lr: Learning rate of both stages.
        head: Head of the stage-2 model.
        dropout: Dropout of the stage-2 head.
        seed: Seed of both stages.
        run_dir: Parent folder; stages go to ``stage1/`` and ``stage2/``.
        verbose: Keras progress-bar setting.
        cnn: The stage-1 model (its output must fit ``first_classes``; it needs
            a ``features`` block, as :func:`~transferkit.models.build_baseline_cnn` has).
        first_recipe: Train stage 1 with
            :func:`~transferkit.scratch.train_from_scratch` (AdamW, warm-up +
            cosine, crop + flip) instead of :func:`train`: a stronger source
            task gives a block worth transferring.
        **train_kwargs: Passed to both :func:`train` calls.

    Returns:
        A :class:`TwoStageResult` with both runs.

    Example:
        >>> res = two_stage(data, CIFAR10_CLASSES[:7], CIFAR10_CLASSES[7:], epochs=10)  # doctest: +SKIP
        >>> res.second.evaluation.f1  # doctest: +SKIP
    """
    source, target = data.subset(first_classes), data.subset(second_classes)
    sub = (lambda s: Path(run_dir) / s) if run_dir is not None else (lambda s: None)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    first_model = cnn or build_baseline_cnn(source, name="stage1_cnn")
    if first_recipe:
        from transferkit.scratch import train_from_scratch  # scratch builds on this module

        first = train_from_scratch(first_model, source, epochs=epochs, seed=seed,
                                   run_dir=sub("stage1"), name="stage1", verbose=verbose,
                                   **train_kwargs)
    else:
        first = train(first_model, source, epochs=epochs, batch_size=batch_size, lr=lr,
                      seed=seed, run_dir=sub("stage1"), name="stage1", verbose=verbose,
                      **train_kwargs)
    second_model = build_transfer_model(
        first_model.get_layer("features"), target.num_classes, input_shape=data.image_shape,
        freeze=True, head=head, dropout=dropout, name="stage2_transfer",
    )
    second = train(
        second_model, target, epochs=second_epochs or epochs, batch_size=batch_size, lr=lr,
        seed=seed, run_dir=sub("stage2"), name="stage2", verbose=verbose, **train_kwargs,
    )
    return TwoStageResult(first, second)
