"""A run-level ETA: after each epoch, how long the rest of the run should take.

Keras' progress bar estimates the current epoch only; on a 2-core CPU a
fine-tune is many minutes long, and users want to know when it ends.
"""

from __future__ import annotations

import logging
import time

import keras

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
    """Log ``epoch k/N in T; about R left, ends ~HH:MM`` after each epoch but the last.

    The estimate is the mean epoch time of this ``fit`` call times the epochs
    left to ``total_epochs`` (a later, larger progressive phase makes it low).

    Args:
        total_epochs: Epochs of the whole run.
        clock: Seconds since some origin (``time.monotonic``; injectable for tests).
    """

    def __init__(self, total_epochs: int, clock=time.monotonic) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.clock = clock
        self.messages: list[str] = []

    def on_train_begin(self, logs=None) -> None:
        self._started, self._epochs, self._last = self.clock(), 0, self.clock()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        now = self.clock()
        took, self._last = now - self._last, now
        self._epochs += 1
        left = self.total_epochs - (epoch + 1)
        if left <= 0:
            return
        remaining = (now - self._started) / self._epochs * left
        ends = time.strftime("%H:%M", time.localtime(time.time() + remaining))
        message = (f"epoch {epoch + 1}/{self.total_epochs} in {format_duration(took)}; "
                   f"about {format_duration(remaining)} left, ends ~{ends}")
        self.messages.append(message)
        logger.info(message)
