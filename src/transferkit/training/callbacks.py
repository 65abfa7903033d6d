"""Learning-rate schedules and the standard callback set, from Keras' own parts.

The schedules are ``keras.optimizers.schedules`` objects (pass them to an
optimizer as its learning rate) or epoch-level ``keras.callbacks`` (pass them
to ``model.fit``). :func:`default_callbacks` assembles early stopping that
restores the best weights, a best-model checkpoint, ``BackupAndRestore`` for
resuming an interrupted run, and a CSV history log.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import keras

from transferkit._atomic import atomic_write, atomic_write_json, commit, temp_path_for
from transferkit.errors import ConfigurationError
from transferkit.runs.layout import BACKUP_DIR, BEST_MODEL_FILE, HISTORY_FILE, read_history
from transferkit.runs.record import metric_mode

logger = logging.getLogger("transferkit")

SCHEDULES = ("cosine", "step", "plateau")


def warmup_cosine(
    base_lr: float,
    total_steps: int,
    *,
    warmup_steps: int = 0,
    final_lr_ratio: float = 0.01,
) -> keras.optimizers.schedules.CosineDecay:
    """Linear warm-up to ``base_lr``, then cosine decay to ``base_lr * final_lr_ratio``.

    The learning rate is ``base_lr / (warmup_steps + 1)`` at step 0, rises
    linearly to ``base_lr`` at ``warmup_steps``, then follows a half cosine to
    ``base_lr * final_lr_ratio`` at ``total_steps`` and stays there.

    Args:
        base_lr: Peak learning rate.
        total_steps: Steps (or epochs, for :func:`lr_callback`) of the whole schedule.
        warmup_steps: Steps of linear warm-up.
        final_lr_ratio: Final learning rate as a fraction of ``base_lr``.

    Returns:
        A Keras ``CosineDecay`` schedule (serialisable, accepted by any optimizer).

    Raises:
        ConfigurationError: For non-positive rates or inconsistent step counts.

    Example:
        >>> sched = warmup_cosine(1e-3, 100, warmup_steps=10)
        >>> opt = keras.optimizers.Adam(learning_rate=sched)
        >>> round(float(sched(10)), 6)
        0.001
    """
    _check_lr(base_lr)
    if total_steps < 1 or not 0 <= warmup_steps < total_steps:
        raise ConfigurationError(
            f"Need total_steps >= 1 and 0 <= warmup_steps < total_steps, got "
            f"{total_steps} and {warmup_steps}."
        )
    if not 0 <= final_lr_ratio <= 1:
        raise ConfigurationError(f"final_lr_ratio must be in [0, 1], got {final_lr_ratio}.")
    if warmup_steps == 0:
        return keras.optimizers.schedules.CosineDecay(
            base_lr, total_steps, alpha=final_lr_ratio
        )
    return keras.optimizers.schedules.CosineDecay(
        base_lr / (warmup_steps + 1),
        total_steps - warmup_steps,
        alpha=final_lr_ratio,
        warmup_target=base_lr,
        warmup_steps=warmup_steps,
    )


def step_decay(
    base_lr: float, steps_per_drop: int, *, factor: float = 0.5
) -> keras.optimizers.schedules.ExponentialDecay:
    """Multiply the learning rate by ``factor`` every ``steps_per_drop`` steps.

    Args:
        base_lr: Initial learning rate.
        steps_per_drop: Steps (or epochs, for :func:`lr_callback`) between drops.
        factor: Multiplier at each drop, in (0, 1).

    Returns:
        A staircase Keras ``ExponentialDecay`` schedule.

    Example:
        >>> round(float(step_decay(0.1, 10, factor=0.5)(25)), 6)
        0.025
    """
    _check_lr(base_lr)
    if steps_per_drop < 1 or not 0 < factor < 1:
        raise ConfigurationError(
            f"Need steps_per_drop >= 1 and 0 < factor < 1, got {steps_per_drop} and {factor}."
        )
    return keras.optimizers.schedules.ExponentialDecay(
        base_lr, steps_per_drop, factor, staircase=True
    )


def lr_callback(
    kind: str,
    base_lr: float,
    epochs: int,
    *,
    warmup_epochs: int = 1,
    final_lr_ratio: float = 0.01,
    drop_every: int = 3,
    factor: float = 0.5,
    monitor: str = "val_loss",
    patience: int = 2,
) -> keras.callbacks.Callback:
    """An epoch-level learning-rate callback for ``model.fit``.

    Args:
        kind: ``"cosine"`` (warm-up then cosine decay over ``epochs``),
            ``"step"`` (times ``factor`` every ``drop_every`` epochs) or
            ``"plateau"`` (times ``factor`` when ``monitor`` stalls for ``patience`` epochs).
        base_lr: The optimizer's learning rate (the peak for cosine).
        epochs: Epochs of the run (cosine only).
        warmup_epochs: Warm-up epochs (cosine only; reduced if the run is short).
        final_lr_ratio: Last learning rate as a fraction of ``base_lr`` (cosine).
        drop_every: Epochs between drops (step).
        factor: Multiplier per drop (step, plateau).
        monitor: Quantity watched (plateau).
        patience: Epochs without improvement before a drop (plateau).

    Returns:
        A ``LearningRateScheduler`` or ``ReduceLROnPlateau`` callback.

    Raises:
        ConfigurationError: For an unknown kind.

    Example:
        >>> cb = lr_callback("cosine", 1e-3, epochs=10)
        >>> model.fit(x, y, epochs=10, callbacks=[cb])  # doctest: +SKIP
    """
    if kind == "plateau":
        return keras.callbacks.ReduceLROnPlateau(
            monitor=monitor, factor=factor, patience=patience, min_lr=base_lr * 1e-3
        )
    if kind == "cosine":
        warmup = min(warmup_epochs, max(epochs - 1, 0))
        schedule = warmup_cosine(
            base_lr, max(epochs, 1), warmup_steps=warmup, final_lr_ratio=final_lr_ratio
        )
    elif kind == "step":
        schedule = step_decay(base_lr, drop_every, factor=factor)
    else:
        raise ConfigurationError(f"Unknown schedule {kind!r}; use one of {SCHEDULES}.")
    return keras.callbacks.LearningRateScheduler(lambda epoch: float(schedule(epoch)))


def default_callbacks(
    run_dir: str | os.PathLike,
    *,
    monitor: str = "val_accuracy",
    patience: int | None = 5,
    schedule: str | keras.callbacks.Callback | None = None,
    base_lr: float | None = None,
    epochs: int | None = None,
    checkpoint_model: keras.Model | None = None,
    backup_dir: str | os.PathLike | None = None,
) -> list[keras.callbacks.Callback]:
    """The standard callback set for a run directory.

    In order: the learning-rate schedule (if ``schedule`` is set), a CSV
    history log (appending, so a resumed run continues it),
    ``BackupAndRestore`` (an interrupted ``fit`` resumes from its last
    completed epoch), a checkpoint of the best model (``best.keras``; on
    resume it only overwrites with a better model than the history shows), and
    early stopping that restores the best weights (if ``patience`` is set).

    Args:
        run_dir: Folder for ``history.csv``, ``best.keras`` and ``backup/``.
        monitor: Metric watched by the checkpoint and early stopping.
        patience: Epochs without improvement before stopping; None disables
            early stopping.
        schedule: ``"cosine"``, ``"step"``, ``"plateau"``, a ready callback, or None.
        base_lr: Learning rate the schedule starts from (needed for a named schedule).
        epochs: Epochs of the run (needed for ``"cosine"``).
        checkpoint_model: Save this model instead of the one being fitted
            (used when a head is trained on cached features but the full
            model should be checkpointed).
        backup_dir: Keep the backup in this folder, also after ``fit`` ends
            (one per phase of a progressive-resizing run, which deletes them
            when the whole run is done); default ``run_dir/backup``, removed
            when ``fit`` ends.

    Returns:
        A list of callbacks for ``model.fit``.

    Example:
        >>> cbs = default_callbacks("runs/a", schedule="cosine", base_lr=1e-3, epochs=10)  # doctest: +SKIP
        >>> model.fit(train_ds, validation_data=val_ds, epochs=10, callbacks=cbs)  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    mode = metric_mode(monitor)
    best_so_far = _best_in_history(run_dir / HISTORY_FILE, monitor, mode)
    checkpoint_cls = _BoundModelCheckpoint if checkpoint_model is not None else AtomicModelCheckpoint
    checkpoint = checkpoint_cls(
        str(run_dir / BEST_MODEL_FILE),
        monitor=monitor,
        mode=mode,
        save_best_only=True,
        initial_value_threshold=best_so_far,
    )
    if checkpoint_model is not None:
        checkpoint.bound_model = checkpoint_model
    # Schedules first, so the learning rate they log reaches the CSV; CSV before
    # backup, so a kill between the two duplicates a row (dropped on reading)
    # rather than losing one.
    callbacks: list[keras.callbacks.Callback] = []
    if isinstance(schedule, keras.callbacks.Callback):
        callbacks.append(schedule)
    elif schedule is not None:
        if base_lr is None or (schedule == "cosine" and epochs is None):
            raise ConfigurationError(
                "A named schedule needs base_lr= (and epochs= for 'cosine')."
            )
        callbacks.append(lr_callback(schedule, base_lr, epochs or 1))
    callbacks += [
        keras.callbacks.CSVLogger(str(run_dir / HISTORY_FILE), append=True),
        AtomicBackupAndRestore(str(backup_dir or run_dir / BACKUP_DIR),
                               delete_checkpoint=backup_dir is None),
        checkpoint,
    ]
    if patience is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=monitor, mode=mode, patience=patience, restore_best_weights=True
            )
        )
    return callbacks


class AtomicModelCheckpoint(keras.callbacks.ModelCheckpoint):
    """``ModelCheckpoint`` that saves to a temporary file and renames it into place.

    Keras writes the checkpoint in place, so a process killed while saving
    leaves a truncated ``best.keras`` behind; here the old checkpoint stays
    intact until the new one is complete.
    """

    def _save_model(self, epoch, batch, logs):
        final = Path(self._get_file_path(epoch, batch, logs))
        tmp = temp_path_for(final)
        original = self.filepath
        self.filepath = str(tmp)
        try:
            super()._save_model(epoch, batch, logs)
        finally:
            self.filepath = original
        if tmp.exists():  # not every epoch improves on the best
            commit(tmp, final)


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """``BackupAndRestore`` whose weights and epoch record are each replaced atomically.

    The weights are committed before the epoch record, so a kill between the
    two repeats at most one epoch (its history row is de-duplicated by
    :func:`read_history`); it never skips one.
    """

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        atomic_write(self._weights_path, lambda tmp: self.model.save_weights(tmp, overwrite=True),
                     suffix=".weights.h5")
        atomic_write_json(self._training_metadata_path,
                          {"epoch": self._current_epoch, "batch": self._last_batch_seen})


class _BoundModelCheckpoint(AtomicModelCheckpoint):
    """A ModelCheckpoint that saves a fixed model whatever model is being fitted."""

    bound_model: keras.Model

    def set_model(self, model):
        super().set_model(self.bound_model)

    def _save_model(self, epoch, batch, logs):
        # The bound model is not the one being fitted, so its optimizer is still
        # unbuilt; saved that way, loading it warns about mismatched variables.
        optimizer = getattr(self.bound_model, "optimizer", None)
        if optimizer is not None and not optimizer.built:
            optimizer.build(self.bound_model.trainable_variables)
        super()._save_model(epoch, batch, logs)


def _best_in_history(path: Path, monitor: str, mode: str) -> float | None:
    values = [v for v in read_history(path).get(monitor, []) if not math.isnan(v)]
    if not values:
        return None
    return min(values) if mode == "min" else max(values)


def _check_lr(lr: float) -> None:
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigurationError(f"Learning rate must be a positive number, got {lr!r}.")
