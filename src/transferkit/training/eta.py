"""A run-level ETA: after each epoch, how long the rest of the run should take.

Keras' progress bar estimates the current epoch only; on a 2-core CPU a
fine-tune is many minutes long, and users want to know when it ends.
"""

from __future__ import annotations

import logging
import time

import keras

from transferkit._text import plural

logger = logging.getLogger("transferkit")


def format_duration(seconds: float) -> str:
    """``"45 s"``, ``"3.5 min"`` or ``"1 h 20 min"``.

    Example:
        >>> format_duration(45), format_duration(210), format_duration(4800)
        ('45 s', '3.5 min', '1 h 20 min')
    """
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.1f} min"
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours} h {minutes} min"


class RunETA(keras.callbacks.Callback):
    """Log the run's plan and ETA early in the first epoch, then after each epoch but the last.

    The first line comes after :data:`EARLY_STEPS` timed steps of the first
    epoch (``Plan: 10 epochs (1,960 steps), about 8.2 min, ends ~09:40``); the
    validation passes are estimated at a third of a step per image. After each
    epoch: ``epoch k/N in T; about R left, ends ~HH:MM``, from the mean epoch
    time of this ``fit`` call (a later, larger progressive phase makes it low).

    Args:
        total_epochs: Epochs of the whole run.
        steps_per_epoch: Training steps per epoch (0: no early plan line).
        validation_images: Images validated after each epoch.
        batch_size: Images per step.
        clock: Seconds since some origin (``time.monotonic``; injectable for tests).
        min_seconds: No plan line for a run expected to take less than this.
    """

    def __init__(self, total_epochs: int, *, steps_per_epoch: int = 0, validation_images: int = 0,
                 batch_size: int = 1, clock=time.monotonic,
                 min_seconds: float = 20.0) -> None:
        super().__init__()
        self.total_epochs, self.steps_per_epoch = total_epochs, steps_per_epoch
        self.validation_images, self.batch_size = validation_images, batch_size
        self.clock, self.min_seconds = clock, min_seconds
        self.messages: list[str] = []

    def on_train_begin(self, logs=None) -> None:
        self._started, self._epochs, self._last = self.clock(), 0, self.clock()
        self._timing_from = None

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        if self._epochs or not self.steps_per_epoch or batch > EARLY_STEPS:
            return
        if batch == 0:  # the first step compiles: time the next ones
            self._timing_from = self.clock()
        elif batch == EARLY_STEPS:
            step = (self.clock() - self._timing_from) / EARLY_STEPS
            steps_left = self.total_epochs * self.steps_per_epoch - (batch + 1)
            validation = step / self.batch_size / 3 * self.validation_images * self.total_epochs
            remaining = steps_left * step + validation
            total = self.clock() - self._started + remaining
            if total < self.min_seconds:  # a head on cached features: done before it is read
                return
            self._log(f"Plan: {plural(self.total_epochs, 'epoch')} "
                      f"({plural(self.total_epochs * self.steps_per_epoch, 'step')}), about "
                      f"{format_duration(total)}, ends ~{clock_in(remaining)}")

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        now = self.clock()
        took, self._last = now - self._last, now
        self._epochs += 1
        left = self.total_epochs - (epoch + 1)
        if left <= 0:
            return
        remaining = (now - self._started) / self._epochs * left
        self._log(f"epoch {epoch + 1}/{self.total_epochs} in {format_duration(took)}; "
                  f"about {format_duration(remaining)} left, ends ~{clock_in(remaining)}")

    def _log(self, message: str) -> None:
        self.messages.append(message)
        logger.info(message)


EARLY_STEPS = 5
"""Steps of the first epoch timed (after the one that compiles) before the plan line."""


def clock_in(seconds: float) -> str:
    """The wall-clock time ``seconds`` from now, as ``HH:MM``."""
    return time.strftime("%H:%M", time.localtime(time.time() + seconds))
