"""How long training and prediction take on this machine, timed on real batches.

A time budget (:mod:`~transferkit.training.budget`) plans from these timings,
and ``fine_tune`` weighs caching the frozen prefix with them
(:mod:`~transferkit.training.cached_prefix`). Each call runs once untimed
first: that run compiles, and the budget pays for it anyway.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras


def per_item_time(call: Callable[[], Any], items: int) -> tuple[float, Any]:
    """Seconds per item of ``call()``'s second run (the first compiles), and what it returned.

    Example:
        >>> seconds, out = per_item_time(lambda: sum(range(1000)), 1000)
        >>> out, seconds < 1
        (499500, True)
    """
    call()
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) / items, result


class _StepClock(keras.callbacks.Callback):
    def on_train_begin(self, logs=None) -> None:
        self.ends: list[float] = []

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        self.ends.append(time.perf_counter())


def step_time(fitted: keras.Model, train_data: dict, steps: int) -> float:
    """Seconds per training step: ``steps`` timed after the first (which compiles).

    fit() with steps_per_epoch, not train_on_batch: fit's own compiled step, which
    the real fit reuses (train_on_batch compiles another). The steps are timed
    between batch ends, leaving out fit's own start and end.
    """
    clock = _StepClock()
    fitted.fit(**train_data, epochs=1, steps_per_epoch=steps + 1, verbose=0, callbacks=[clock])
    if steps:
        return (clock.ends[-1] - clock.ends[0]) / steps
    started = time.perf_counter()  # one step an epoch: a second call, timed whole
    fitted.fit(**train_data, epochs=1, steps_per_epoch=1, verbose=0)
    return time.perf_counter() - started
