"""``train``: fit a model on a DataSplits and score it; the run every recipe ends in.

:func:`train` takes its options as keywords, as users call it, and hands
them inward as one :class:`~transferkit.training.plan.TrainOptions`;
:func:`run_training` is the shared path of ``train`` and the recipes: check,
choose the fast path (:mod:`transferkit.training.fastpath`), compile, fit,
evaluate, record. Every call returns a :class:`~transferkit.runs.record.Run`.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import keras

from transferkit import _backend, _workers
from transferkit._atomic import atomic_link
from transferkit._multiworker import keras_workarounds
from transferkit._progress import progress_verbose
from transferkit._text import plural
from transferkit.data.splits import SPLITS, DataSplits
from transferkit.data.stream import watched
from transferkit.errors import ConfigurationError, DataError
from transferkit.models.anatomy import check_model_input
from transferkit.runs.guard import run_lock
from transferkit.runs.layout import (
    BEST_MODEL_FILE,
    HISTORY_FILE,
    MODEL_FILE,
    prepare_run_dir,
    read_history,
)
from transferkit.runs.record import Run, metric_mode, run_config
from transferkit.training.class_weight import (
    class_weight_record,
    describe_class_weight,
    resolve_class_weight,
)
from transferkit.training.core import current_lr
from transferkit.training.eta import format_duration
from transferkit.training.fastpath import choose_fast_path
from transferkit.training.losses import LOSS
from transferkit.training.optim import make_optimizer
from transferkit.training.plan import Plan, TrainOptions, resolve_epochs

logger = logging.getLogger("transferkit")


def train(
    model: keras.Model,
    data: DataSplits,
    *,
    epochs: int | None = None,
    budget: float | str | None = None,
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
    class_weight: str | dict | None = None,
    verbose: int | str = "auto",
    **options,
) -> Run:
    """Train a model on ``data`` and evaluate it on the test split.

    Args:
        model: A model from :func:`~transferkit.models.builders.build_transfer_model` or
            :func:`~transferkit.models.builders.build_baseline_cnn` (or any Keras
            classifier taking raw images; caching features needs a transferkit one).
        data: The dataset; its image shape must match the model input.
        epochs: Epochs to train (default 10); with a ``budget``, the most to train.
        budget: Seconds (or ``"10min"``, ``"1h"``) the whole call may take:
            caching, training and the test evaluation. A few timed steps choose
            the number of steps (the last epoch may be partial) and the run
            re-plans after each epoch (:mod:`~transferkit.training.budget`).
            With a frozen backbone epochs cost little: give ``epochs`` to bound them.
        batch_size: Images per batch.
        optimizer: Optimizer name or instance (used when compiling).
        lr: Learning rate (used when compiling with an optimizer name).
        callbacks: Extra Keras callbacks. With cached features they are
            given the head model, which shares its layers with ``model``.
        augment: ``True``: random crop + horizontal flip of every training
            batch (in NumPy, outside the model), which disables feature
            caching. ``"flip"``: horizontal flips only; with a frozen backbone
            the head then trains on cached features of each image and of its
            mirror image (twice the extraction time). ``"photo"``: random-resized
            crop, flip and mild colour jitter for photos
            (:func:`~transferkit.data.augment.photo_augment`); no caching.
        cache_features: ``"auto"`` caches whenever the backbone is frozen and
            ``augment`` is off or ``"flip"``; ``True`` requires it; ``False`` never caches.
        run_dir: Folder for history, checkpoints, backup and the run record.
            Enables the default callbacks (see
            :func:`~transferkit.training.callbacks.default_callbacks`).
        name: Run name; default: the model name.
        seed: Seed for Python, NumPy and TensorFlow (``keras.utils.set_random_seed``)
            covering shuffling, dropout and augmentation. Weights are initialised
            when the model is built: call ``keras.utils.set_random_seed(seed)``
            before building it for fully repeatable runs.
        patience: Early-stopping patience (restores the best weights); None: off.
        schedule: ``"cosine"``, ``"step"`` or ``"plateau"`` learning-rate schedule.
        class_weight: ``"balanced"`` (each class's loss weighted by the inverse of
            its share of the training images, scikit-learn's
            ``compute_class_weight``) or ``{class name or index: weight}``
            (unnamed classes weigh 1); None: every image counts the same. For
            folders where the largest class has several times the images of the
            smallest (:mod:`~transferkit.training.class_weight`); recorded in
            ``run.config["class_weight"]``.
        verbose: Keras progress-bar setting.
        **options: The rarer options (fields of
            :class:`~transferkit.training.plan.TrainOptions`): ``monitor``
            (metric for checkpointing and early stopping, default
            ``"val_accuracy"``; the training metric when there is no
            validation split), ``overwrite`` (replace a run in ``run_dir``),
            ``resume`` (continue an interrupted run in ``run_dir`` from its
            backup) and ``compile`` (default: only if the model is not
            compiled yet).

    Returns:
        The :class:`~transferkit.runs.record.Run`; ``run.model`` is ``model``.

    Raises:
        DataError: If the data does not match the model.
        UnknownNameError: For a ``class_weight`` key that names no class.
        ConfigurationError: For bad arguments (a negative class weight, an
            index that is not a class), or ``cache_features=True``
            where caching is not valid.
        RunDirectoryExistsError: If ``run_dir`` holds a run and neither
            ``overwrite`` nor ``resume`` is set.

    Example:
        ``data`` here is a small real CIFAR-10 subset (2 classes); the frozen
        backbone's features are computed once and the head trains on them:

        >>> model = build_transfer_model("mobilenet_v2", data)
        >>> run = train(model, data, epochs=10, verbose=0)
        >>> run.config["cached_features"], run.epochs_run
        (True, 10)
        >>> run.evaluation.accuracy > 0.8  # chance: 0.5
        True
    """
    return run_training(model, data, TrainOptions(
        epochs=resolve_epochs(epochs, budget), budget=budget, batch_size=batch_size,
        optimizer=optimizer, lr=lr, callbacks=callbacks, augment=augment, cache_features=cache_features, run_dir=run_dir, name=name, seed=seed,
        patience=patience, schedule=schedule, class_weight=class_weight, verbose=verbose,
        **options,
    ))


def run_training(model: keras.Model, data: DataSplits, options: TrainOptions, *,
                 recipe=None) -> Run:
    """Check, choose the fast path, compile, fit, evaluate and record: ``train`` and every recipe.

    ``recipe`` (a :class:`~transferkit.training.recipes.Recipe`) compiles the
    model and is recorded in the run's config; without one, the model is
    compiled from ``options`` unless it is compiled already.
    """
    started = time.perf_counter()
    _check_data(model, data)
    class_weight = resolve_class_weight(options.class_weight, data.y_train, data.class_names)
    _backend.check_data_parallel(options.batch_size, [len(data.split(s)[1]) for s in SPLITS])
    _backend.check_replica_batches(model, options.batch_size, [len(data.y_train), len(data.y_val)])
    role = _workers.current_role(model)
    _check_job(model, options, role)
    # Only the chief writes the run folder (under its lock); the other workers write to a
    # temporary folder, and all of them restore the chief's backup when the job resumes.
    with (_workers.writable_run_dir(options.run_dir, role, resume=options.resume) as run_dir,
          run_lock(run_dir), keras_workarounds(model)):
        return _run(model, data, options, recipe, class_weight, run_dir, started)


def _run(model, data, options, recipe, class_weight, run_dir, started) -> Run:
    logger.info("== %s: %s on %s ==", options.name or model.name,
                f"a {format_duration(options.budget.seconds)} budget" if options.budget
                else plural(options.epochs, "epoch"), plural(len(data.y_train), "training image"))
    if options.seed is not None:
        keras.utils.set_random_seed(options.seed)
    path = choose_fast_path(model, data, options, recipe.fine_tune if recipe else None)
    monitor = options.monitor
    if not len(data.y_val) and monitor.startswith("val_"):
        monitor = monitor[4:]
    plan = Plan(model, data, options,
                prepare_run_dir(run_dir, overwrite=options.overwrite,
                                resume=options.resume),
                monitor, progress_verbose(options.verbose), recipe, class_weight=class_weight)
    if class_weight is not None:
        logger.info("Class weights%s: %s.", " (balanced)" if options.class_weight == "balanced"
                    else "", describe_class_weight(class_weight, data.class_names))
    timings: dict[str, float] = {}
    # The one distribution scope of every path: what it builds (head, suffix, views) and
    # compiles, and the optimizer variables fit creates, land on the model's devices.
    with _backend.distribution_scope(model), watched(data):  # watched: files streamed from disk
        _compile(plan)
        t = time.perf_counter()
        history, evaluate_on = path.fit(plan, timings)
    timings["fit"] = time.perf_counter() - t - timings.get("features", 0.0)
    t = time.perf_counter()
    with watched(data, verify=False):
        evaluation = evaluate_on() if len(data.y_test) else None
    timings["evaluate"] = time.perf_counter() - t
    if plan.run_path is not None:
        history = read_history(plan.run_path / HISTORY_FILE) or history
    timings["total"] = time.perf_counter() - started
    return _record(plan, path, history, evaluation, timings)


def _check_job(model: keras.Model, options: TrainOptions, role: _workers.Role) -> None:
    """A multi-worker job: TensorFlow's, a global batch its replicas share evenly, no budget."""
    if not role.multi_worker:
        return
    if role.task_type == "process":
        # Measured with Keras 3.15.1 and JAX 0.10.2: fit works, but predict returns arrays that
        # span the other processes' devices, which the test evaluation and the feature cache
        # read as local NumPy arrays (RuntimeError: Fetching value ... non-addressable devices).
        raise ConfigurationError(
            f"transferkit does not train in a multi-process JAX job yet ({role.describe()}): "
            "Keras' predict there returns arrays spread over the other processes' devices, which "
            "the test evaluation and the feature cache cannot read. Use one process per machine "
            "with keras.distribution.DataParallel over its devices, or TensorFlow's "
            "MultiWorkerMirroredStrategy (docs/scaling.rst).")
    strategy = getattr(model, "distribute_strategy", None)  # TensorFlow; JAX: the mesh
    replicas = max(int(getattr(strategy, "num_replicas_in_sync", 1)),
                   _backend.data_parallel_replicas(), role.workers)
    _workers.check_global_batch(options.batch_size, replicas, role)
    if options.budget is not None:
        # Each worker would time its own steps and could stop at another epoch than the
        # rest, leaving them waiting for it in a collective for ever.
        raise ConfigurationError("A time budget is not supported in a multi-worker job: give "
                                 "epochs instead.")


def _compile(plan: Plan) -> None:
    model, options, recipe = plan.model, plan.options, plan.recipe
    if recipe is not None:
        recipe.compile(model, -(-len(plan.data.y_train) // options.batch_size) * options.epochs,
                       adjustable=plan.budget is not None)
    elif options.compile or (options.compile is None and not getattr(model, "compiled", False)):
        model.compile(optimizer=make_optimizer(options.optimizer, options.lr), loss=LOSS,
                      metrics=["accuracy"])


def _record(plan: Plan, path, history, evaluation, timings) -> Run:
    model, options, recipe = plan.model, plan.options, plan.recipe
    config = run_config(
        model, plan.data, optimizer=model.optimizer,
        lr=recipe.lr if recipe else current_lr(model, options.lr),
        epochs=plan.budget_keeper.epochs if plan.budget_keeper else options.epochs,
        batch_size=options.batch_size, augment=options.augment,
        cached=path.name == "cached_head", seed=options.seed, schedule=options.schedule,
        patience=options.patience,
        class_weight=class_weight_record(options.class_weight, plan.class_weight,
                                         plan.data.class_names),
    )
    if recipe is not None:
        config["recipe"] = recipe.record(path)
    if plan.budget_keeper is not None:
        config["budget"] = plan.budget_keeper.record() | {
            "elapsed_s": round(plan.budget.elapsed(), 1)}
    run = Run(name=options.name or model.name, config=config, history=history,
              evaluation=evaluation, timings={k: round(v, 3) for k, v in timings.items()},
              model=model)
    if plan.run_path is not None:
        run.artifacts.update({"history": HISTORY_FILE, "best_model": BEST_MODEL_FILE})
        run.save(plan.run_path)
        _share_best_if_last(plan.run_path, history, plan.monitor)
    return run


def _share_best_if_last(path: Path, history: dict, monitor: str) -> None:
    """Store ``best.keras`` once: a hard link to ``model.keras`` when the last epoch was the best.

    The checkpoint then holds the same weights as the final model (the usual
    case with a cosine schedule), and a second copy would double the run's size.
    """
    values = history.get(monitor) or []
    best, model = path / BEST_MODEL_FILE, path / MODEL_FILE
    if not values or not best.is_file() or not model.is_file():
        return
    pick = min if metric_mode(monitor) == "min" else max
    if values.index(pick(values)) == len(values) - 1:  # the checkpoint keeps the first best
        atomic_link(model, best)


def _check_data(model: keras.Model, data: DataSplits) -> None:
    if not isinstance(data, DataSplits):
        raise DataError(f"data must be a DataSplits, got {type(data).__name__}.")
    check_model_input(model, data.x_train)
    units = model.output_shape[-1]
    if units != data.num_classes:
        raise DataError(
            f"Model {model.name!r} outputs {units} classes but the data has "
            f"{data.num_classes} ({', '.join(data.class_names)})."
        )


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
        >>> model = build_baseline_cnn(10)
    """
    keras.utils.set_random_seed(seed)
    _backend.enable_determinism()
