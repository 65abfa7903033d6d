"""Time budgets: a training call planned, from measured step times, to end when the user's time does.

``fine_tune(model, data, budget="10min")`` (and ``train``,
``train_from_scratch``, ``transferkit train --budget 10m``) starts the clock
when it is called. Whatever comes before the first step (a fresh head trained
first, features or prefix activations cached, compiling) is paid from the
budget. Then :func:`plan_budget` runs a few real training steps and times
them (and a validation batch), chooses how many steps fit in what is left
after the final test evaluation, makes the learning-rate schedule end exactly
there (:class:`~transferkit.training.optim.WarmupCosine`) and logs the plan.
:class:`BudgetKeeper` stops at the planned step (the last epoch may be
partial) and re-plans after every epoch from the measured epoch times, so a
machine that slows down mid-run still ends on time.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field

import keras
import numpy as np

from transferkit import _backend
from transferkit._text import plural
from transferkit._validation import parse_duration
from transferkit.errors import BudgetTooShortError
from transferkit.training.eta import clock_in, format_duration
from transferkit.training.optim import WarmupCosine
from transferkit.training.timing import per_item_time, step_time

logger = logging.getLogger("transferkit")

CALIBRATION_STEPS = 4
"""Training steps timed before the plan (after one untimed step that compiles), at most
an epoch's steps less one."""
SLACK = 1.25
"""``fit`` is given room for this many times the planned steps: re-planning may add steps
when the machine speeds up (other work ending), and stops at the planned step anyway."""
EVALUATE_BATCH = 256
"""The batch of :func:`~transferkit.runs.evaluation.evaluate`, timed at its own size."""
MARGIN = 0.02
"""Share of the budget kept back for what is not measured (saving the model, logging)."""
MIRROR_EPOCHS = 6.0
"""Cache the mirror view of the training images only where the budget still buys this many
epochs with it (:func:`views_that_pay`); below, the pass it costs trains more steps instead.

Measured on 5,000 CIFAR-10 images, 3 seeds (benchmarks/budget_views): where both views bought
2.2 epochs, the image alone trained 56 % more steps and scored 2.5 ± 0.3 points higher; where
they bought 7-14 epochs, it scored 0.6 ± 0.7 points lower. 6 lies between; it is not tuned."""


@dataclass(frozen=True)
class Budget:
    """A time budget and the moment its call started (``time.monotonic``).

    ``one_epoch_at_least``: a share of a larger budget (:class:`BudgetShares`)
    trains one epoch even when it does not fit, taking the time from the calls
    after it, rather than failing a command half done.
    """

    seconds: float
    started: float = field(default_factory=time.monotonic)
    one_epoch_at_least: bool = False

    @classmethod
    def start(cls, value) -> Budget | None:
        """The budget of a call starting now; None for ``None`` (no budget).

        A :class:`BudgetShares` hands out its next share.
        """
        if value is None or isinstance(value, Budget):
            return value
        if isinstance(value, BudgetShares):
            return value.next()
        return cls(parse_duration(value, "budget"))

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def for_training(self, final: float) -> float:
        """Seconds left to train: what is not spent, less the test evaluation (``final``
        seconds) and the margin."""
        return self.seconds * (1 - MARGIN) - self.elapsed() - final

    def check_left(self) -> None:
        """Raise :class:`BudgetTooShortError` if the budget is spent before training began."""
        if self.elapsed() >= self.seconds * (1 - MARGIN) and not self.one_epoch_at_least:
            raise BudgetTooShortError(
                f"A budget of {format_duration(self.seconds)} was spent before training began: "
                f"{format_duration(self.elapsed())} went on preparing (reading images, "
                "features, compiling). Give more than that, plus the epochs to train, on this "
                "machine.")


def refuse_before_preparing(budget: Budget, *, preparing: float, what: str, epoch: float,
                            final: float) -> None:
    """Refuse now, before ``what`` is paid, where it, one epoch and the test cannot fit.

    ``preparing``, ``epoch`` and ``final`` are estimates in seconds from timed
    batches (lower bounds: no validation pass). ``preparing`` may be 0 (nothing
    to prepare: only the epoch is weighed). A share of a larger budget is
    never refused (it trains one epoch at least).

    Raises:
        BudgetTooShortError: With the budget this machine would need.
    """
    needed = budget.elapsed() + preparing + epoch + final
    if budget.one_epoch_at_least or needed <= budget.seconds * (1 - MARGIN):
        return
    costs = (f"{what} would take about {format_duration(preparing)} and an epoch about "
             f"{format_duration(epoch)}" if preparing else
             f"an epoch ({what}) would take about {format_duration(epoch)}")
    before = f", before {what}" if preparing else ""
    raise BudgetTooShortError(
        f"A budget of {format_duration(budget.seconds)} is too short for one epoch here: "
        f"{costs}, after {format_duration(budget.elapsed())} spent (estimated from timed "
        f"batches{before}). {_give_at_least(needed)}")


def _give_at_least(needed: float) -> str:
    """The least budget that would do, ``needed`` seconds of estimates plus the margin."""
    least = needed / (1 - MARGIN)
    return f"Give at least {format_duration(least)} (budget={math.ceil(least)}) on this machine."


def views_that_pay(budget: Budget, *, image_pass: float, mirror_pass: float, cached_epoch: float,
                   fed_epoch: float, final: float, mirror_epochs: float | None = None) -> int:
    """How many views of the training images to cache within ``budget``: 2, 1 or 0 (feed them).

    Caching the images costs ``image_pass`` seconds once (the validation images
    included) and their mirror images ``mirror_pass`` more; then an epoch costs
    ``cached_epoch``. Without caching nothing is paid up front and an epoch
    costs ``fed_epoch`` (the frozen layers run every step). The way that buys
    the most epochs wins, except that the mirror view, a flip augmentation, is
    cached only where the budget still holds ``mirror_epochs``
    (:data:`MIRROR_EPOCHS`) with it, or where it costs nothing (already cached):
    in a short run, the epochs it costs are worth more than the flips.
    Estimates in seconds from timed batches.

    Example:
        On a 2-core AVX2 EPYC, all of CIFAR-10 at MobileNetV2's default cut:
        150 s a view, then 240 s an epoch; 390 s an epoch without caching.

        >>> kw = dict(image_pass=150, mirror_pass=150, cached_epoch=240, fed_epoch=390, final=40)
        >>> [views_that_pay(Budget(s), **kw) for s in (300, 600, 1800, 3600)]
        [0, 1, 1, 2]
    """
    mirror_epochs = MIRROR_EPOCHS if mirror_epochs is None else mirror_epochs
    left = budget.for_training(final)
    fed = left / fed_epoch
    one = (left - image_pass) / cached_epoch
    two = one - mirror_pass / cached_epoch
    if two >= fed and (two >= mirror_epochs or mirror_pass == 0):
        return 2
    return 1 if one >= fed else 0


@dataclass
class BudgetShares:
    """One budget for several training calls (``transferkit run NAME --budget``).

    Pass the same object as ``budget=`` to each call: each takes an equal share
    of what is left when it starts, so time a call does not use (it ran out of
    epochs first) goes to the calls after it. A share too short for one epoch
    trains one epoch anyway (a warning says so), so the command finishes,
    later than asked, instead of failing with runs half done.

    Args:
        seconds: The whole budget.
        runs: How many training calls share it.
        reserve: Seconds kept back for what follows the last call (reports).
        started: When the budget's clock started (``time.monotonic``).

    Example:
        >>> shares = BudgetShares(300, runs=2, reserve=20, started=time.monotonic())
        >>> round(shares.next().seconds / 10) * 10  # half of 300 s less 20 s
        140
    """

    seconds: float
    runs: int
    reserve: float = 0.0
    started: float = field(default_factory=time.monotonic)
    taken: int = 0

    def next(self) -> Budget:
        """The next call's budget, starting now (one epoch at least)."""
        elapsed = time.monotonic() - self.started
        left = self.seconds - self.reserve - elapsed
        runs_left = max(1, self.runs - self.taken)
        self.taken += 1
        if left <= 0:
            logger.warning("The budget of %s is spent (%s have gone, %s are kept for the "
                           "reports) and %s remain: each trains one epoch.",
                           format_duration(self.seconds), format_duration(elapsed),
                           format_duration(self.reserve), plural(runs_left, "training run"))
        return Budget(max(left, 0.0) / runs_left, one_epoch_at_least=True)

    def record(self) -> dict:
        return {"seconds": round(self.seconds, 1), "runs": self.runs,
                "reserve_s": round(self.reserve, 1)}


@dataclass
class Costs:
    """Measured seconds: per training step, per validation pass, per epoch's
    callbacks (checkpoints, backups), and for the final test evaluation."""

    step: float
    validation: float
    epoch_overhead: float
    final: float

    def epoch(self, steps_per_epoch: int) -> float:
        return steps_per_epoch * self.step + self.validation + self.epoch_overhead


def steps_that_fit(seconds: float, costs: Costs, steps_per_epoch: int, max_steps: int) -> int:
    """The most training steps whose epochs (each validated) fit in ``seconds``.

    Example:
        >>> costs = Costs(step=1.0, validation=5.0, epoch_overhead=0.0, final=0.0)
        >>> steps_that_fit(100, costs, 10, 1000)  # 6 epochs of 15 s, then 5 steps + validation
        65
        >>> steps_that_fit(100, costs, 10, 40)
        40
    """
    epoch = costs.epoch(steps_per_epoch)
    full = int(max(seconds, 0) // epoch)
    left = seconds - full * epoch - costs.validation - costs.epoch_overhead
    partial = int(max(left, 0) // costs.step) if costs.step > 0 else steps_per_epoch
    return min(max_steps, full * steps_per_epoch + min(partial, steps_per_epoch - 1))


class BudgetKeeper(keras.callbacks.Callback):
    """Stop at the planned step; after each epoch, re-plan from the measured times.

    Args:
        budget: The call's budget.
        costs: The calibrated costs.
        steps_per_epoch: Training steps in one epoch.
        total_steps: The planned number of steps.
        max_steps: The most steps the run may take (``epochs`` given, or the plan's).
        start_step: Optimizer steps taken before ``fit`` (the timed ones).
        fit_epochs: The epochs ``fit`` is given; the run may not go past them.
        schedule: The learning-rate schedule to keep in step (or None).
    """

    def __init__(self, budget: Budget, costs: Costs, steps_per_epoch: int, total_steps: int, *,
                 start_step: int, fit_epochs: int, schedule: WarmupCosine | None = None) -> None:
        super().__init__()
        self.budget, self.costs, self.schedule = budget, costs, schedule
        self.steps_per_epoch, self.total_steps = steps_per_epoch, total_steps
        self.planned_steps, self.start_step, self.fit_epochs = total_steps, start_step, fit_epochs
        self.max_steps = start_step + fit_epochs * steps_per_epoch
        self._epoch_started = self._trained = time.monotonic()
        self._first_step, self._done, self._ended = 0, 0, None

    @property
    def epochs(self) -> int:
        """Epochs the plan touches (the last may be partial)."""
        return self._epochs_for(self.total_steps)

    def _epochs_for(self, total_steps: int) -> int:
        return -(-(total_steps - self.start_step) // self.steps_per_epoch)

    def on_epoch_begin(self, epoch: int, logs=None) -> None:
        now = time.monotonic()
        if self._ended is not None:  # the other callbacks' epoch-end work (checkpoints, backups)
            self.costs.epoch_overhead = now - self._ended
        self._epoch_started = self._trained = now
        self._first_step = self._done

    def on_train_begin(self, logs=None) -> None:
        self._done = _optimizer_steps(self.model)

    def on_train_batch_end(self, batch: int, logs=None) -> None:
        # Counted here: JAX writes the optimizer's step count back only after each epoch.
        self._done += 1
        if self._done >= self.total_steps:
            self.model.stop_training = True

    def on_test_begin(self, logs=None) -> None:
        self._trained = time.monotonic()

    def on_epoch_end(self, epoch: int, logs=None) -> None:
        done, now = self._done, time.monotonic()
        self._ended = now
        if done >= self.total_steps:
            self.model.stop_training = True
            return
        # This epoch's own times: the step time follows the machine's load.
        trained = self._trained if self._trained > self._epoch_started else now
        self.costs.step = (trained - self._epoch_started) / max(1, done - self._first_step)
        if trained < now and self.costs.validation:
            self.costs.validation = now - trained
        total = done + max(1, steps_that_fit(self.budget.for_training(self.costs.final), self.costs,
                                             self.steps_per_epoch, self.max_steps - done))
        if total != self.total_steps:
            self.total_steps = total
            if self.schedule is not None:
                self.schedule.set_total_steps(total, step=done)
                _backend.refresh_train_function(self.model)

    def record(self) -> dict:
        """What was planned and what the run did, for the run record."""
        return {"seconds": round(self.budget.seconds, 1), "planned_steps": self.planned_steps,
                "planned_epochs": self._epochs_for(self.planned_steps),
                "steps": self.total_steps, "step_s": round(self.costs.step, 4),
                "validation_s": round(self.costs.validation, 2),
                "final_s": round(self.costs.final, 2)}


def plan_budget(fitted: keras.Model, train_data: dict, val, *, budget: Budget,
                steps_per_epoch: int, batch_size: int, max_epochs: int, test=(None, ()),
                describe: str = "") -> BudgetKeeper:
    """Time a few real steps of ``fitted`` and plan the run to end with ``budget``.

    The timed steps are training steps (counted in the plan). ``test`` is the
    test evaluation's model and images: the model is timed on a batch of them
    where it is not ``fitted`` on the same inputs (the full model, where a
    suffix trains on the frozen prefix's cached activations); otherwise a test
    image costs what a validation image does.

    Raises:
        BudgetTooShortError: If one epoch and the final evaluation do not fit;
            the message gives the budget this machine would need.
    """
    budget.check_left()
    costs = _calibrate(fitted, train_data, val, min(CALIBRATION_STEPS, steps_per_epoch - 1),
                       batch_size, test)
    taken = _optimizer_steps(fitted)
    max_steps = taken + max_epochs * steps_per_epoch
    total = taken + steps_that_fit(budget.for_training(costs.final), costs, steps_per_epoch,
                                   max_steps - taken)
    one_epoch = min(steps_per_epoch, max_steps - taken)
    if total - taken < one_epoch and budget.one_epoch_at_least:
        logger.warning("A share of %s is too short for one epoch here (about %s): training "
                       "one epoch, taking the time from the runs after it.",
                       format_duration(budget.seconds), format_duration(costs.epoch(steps_per_epoch)))
        total = taken + one_epoch
    if total - taken < one_epoch:
        needed = budget.elapsed() + costs.epoch(steps_per_epoch) + costs.final
        raise BudgetTooShortError(
            f"A budget of {format_duration(budget.seconds)} is too short for one epoch here: "
            f"{format_duration(budget.elapsed())} went on preparing (features, compiling, "
            f"timing), an epoch takes about {format_duration(costs.epoch(steps_per_epoch))} and "
            f"the test evaluation {format_duration(costs.final)}. {_give_at_least(needed)}")
    schedule = _adjustable_schedule(fitted)
    if schedule is not None:
        schedule.set_total_steps(total, step=taken)
        _backend.refresh_train_function(fitted)
    # fit's epochs are fixed from here on: room for a machine that turns out faster.
    fit_epochs = min(max_epochs, math.ceil((total - taken) * SLACK / steps_per_epoch))
    keeper = BudgetKeeper(budget, costs, steps_per_epoch, total, start_step=taken,
                          fit_epochs=fit_epochs, schedule=schedule)
    remaining = (total - taken) * costs.step + keeper.epochs * costs.validation + costs.final
    # Keras prints "Epoch 1/<fit_epochs>": say why that count may exceed the plan.
    room = (f"; Keras counts up to {fit_epochs}, room to re-plan if steps run faster"
            if fit_epochs > keeper.epochs else "")
    logger.info("Plan for the %s budget: %s (%s%s), about %s in all, ends ~%s%s.",
                format_duration(budget.seconds), plural(keeper.epochs, "epoch"),
                plural(total, "step"), describe, format_duration(budget.elapsed() + remaining),
                clock_in(remaining), room)
    return keeper


def _calibrate(fitted: keras.Model, train_data: dict, val, steps: int, batch_size: int,
               test) -> Costs:
    step = step_time(fitted, train_data, steps)
    if val is None:
        per_image = step / batch_size / 3  # a forward pass: about a third of a step
        validation = 0.0
    else:
        x_val, y_val = (val.x, val.y) if isinstance(val, keras.utils.PyDataset) else val
        batch = slice(0, min(batch_size, len(y_val)))
        per_image, _ = per_item_time(
            lambda: fitted.evaluate(x_val[batch], y_val[batch], batch_size=batch_size, verbose=0),
            len(np.asarray(y_val[batch])))
        validation = per_image * len(y_val)
    test_model, x_test = test
    if test_model is not None and len(x_test):
        x = x_test[:EVALUATE_BATCH]  # what the test evaluation calls: predict
        per_image, _ = per_item_time(
            lambda: test_model.predict(x, batch_size=EVALUATE_BATCH, verbose=0), len(x))
    return Costs(step=step, validation=validation, epoch_overhead=0.0,
                 final=len(x_test) * per_image)


def _optimizer_steps(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations))


def _adjustable_schedule(model: keras.Model) -> WarmupCosine | None:
    # Keras keeps an optimizer's schedule object private (``learning_rate``
    # reads its current value); the budget needs the object to re-plan it.
    schedule = getattr(model.optimizer, "_learning_rate", None)
    return schedule if isinstance(schedule, WarmupCosine) else None
