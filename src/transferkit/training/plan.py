"""The plan of one training call: every option in one object, handed inward whole.

:func:`~transferkit.training.train.train` and the recipes take keyword
arguments, as users call them, and turn them into one :class:`TrainOptions`;
the training core builds a :class:`Plan` from it (the model, the data, the
recipe and the prepared run folder) and hands that to the chosen fast path
and the fit core. Nothing below the public functions passes options one by one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from transferkit._validation import check_scalar
from transferkit.errors import ConfigurationError
from transferkit.runs.layout import backup_dir
from transferkit.training.class_weight import check_class_weight

if TYPE_CHECKING:  # annotations only: no Keras import for the plan itself
    import keras

    from transferkit.data.splits import DataSplits

DEFAULT_EPOCHS, MAX_BUDGET_EPOCHS = 10, 30
"""Epochs without a budget; the most a budget buys when ``epochs`` is not given.

Three times the default: a budget larger than that many epochs need ends the run
early (what is left passes on). Uncapped (it was 1,000), ``transferkit train --budget
3m`` on 81 flower photos fine-tuned for 130 epochs, its validation loss rising from
0.84 to 1.69, and ended under the frozen head it started from (0.78 vs 0.81
validation accuracy); ``--head-epochs 2 --epochs 2`` on the same photos ended at 0.85.
"""

RECIPE_SETS = ("cache_features", "compile", "optimizer", "lr", "schedule")
""":class:`TrainOptions` fields a recipe sets itself (``fine_tune``, ``train_from_scratch``)."""


@dataclass(frozen=True)
class TrainOptions:
    """Every option of :func:`~transferkit.training.train.train` (its docstring says what each does).

    Example:
        >>> TrainOptions(epochs=3).batch_size
        64
        >>> TrainOptions(epochs=0)
        Traceback (most recent call last):
        ...
        transferkit.errors.ConfigurationError: epochs must be an int >= 1, got 0.
    """

    epochs: int = 10
    batch_size: int = 64
    optimizer: Any = "adam"
    lr: Any = 1e-3
    callbacks: list | None = None
    augment: bool | str = False
    cache_features: bool | str = "auto"
    run_dir: str | os.PathLike | None = None
    name: str | None = None
    seed: int | None = None
    patience: int | None = None
    schedule: str | None = None
    monitor: str = "val_accuracy"
    overwrite: bool = False
    resume: bool = False
    compile: bool | None = None
    verbose: int | str = "auto"
    budget: Any = None
    class_weight: Any = None

    def __post_init__(self) -> None:
        check_scalar(self.epochs, "epochs", int, min_val=1)
        check_class_weight(self.class_weight)  # its keys: against the data, in run_training
        self._check_budget()
        check_scalar(self.batch_size, "batch_size", int, min_val=1)
        # Imported here: the augment module subclasses a Keras class, and the plan
        # module imports no Keras (training, which builds options, has it loaded).
        from transferkit.data.augment import check_augment

        check_augment(self.augment)
        if self.cache_features not in (True, False, "auto"):
            raise ConfigurationError(
                f"cache_features must be True, False or 'auto', got {self.cache_features!r}."
            )

    def _check_budget(self) -> None:
        from transferkit.training.budget import Budget  # Keras: see check_augment below

        object.__setattr__(self, "budget", Budget.start(self.budget))
        if self.budget is not None and self.resume:
            raise ConfigurationError("A budgeted run cannot be resumed (its plan was timed on "
                                     "the first run); start it again, or resume without budget=.")
        if self.budget is not None and self.schedule is not None:
            raise ConfigurationError(f"schedule={self.schedule!r} spans a fixed number of epochs; "
                                     "with a budget, use no schedule or fine_tune / "
                                     "train_from_scratch, whose schedule follows the budget.")

    @classmethod
    def for_recipe(cls, train_kwargs: dict, **recipe_sets) -> TrainOptions:
        """The options of a recipe call: the user's ``train_kwargs`` and what the recipe sets.

        Raises:
            ConfigurationError: For an option the recipe sets itself.
            TypeError: For a name that is no option at all.
        """
        refused = [k for k in (*RECIPE_SETS, "phases", "recipe") if k != "schedule"]
        for key in refused:
            if key in train_kwargs:
                raise ConfigurationError(f"This recipe does not take {key}= as a train option.")
        if train_kwargs.get("schedule") is not None:  # schedule=None is what train() defaults to
            raise ConfigurationError("This recipe has its own warm-up + cosine schedule per step; "
                                     "schedule= is for train().")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(train_kwargs) - known)
        if unknown:
            raise TypeError(f"Unknown training option(s) {', '.join(unknown)}; the options are "
                            f"{', '.join(sorted(known - set(RECIPE_SETS)))}.")
        return cls(**{**train_kwargs, **recipe_sets})


@dataclass
class Plan:
    """What the fast paths and the fit core read: the call's options, resolved.

    ``run_path`` is the prepared run folder (or None), ``monitor`` the metric
    actually watched (``val_`` dropped without a validation split) and
    ``recipe`` the recipe that compiled the model (None for plain ``train``).
    """

    model: keras.Model
    data: DataSplits
    options: TrainOptions
    run_path: Path | None
    monitor: str
    verbose: int | str
    recipe: Any = None
    budget_keeper: Any = None
    """The :class:`~transferkit.training.budget.BudgetKeeper` of a budgeted fit."""
    test_model: Any = None
    """The model the test evaluation runs, where it is not the one fitted on the
    same inputs (the full model, where a suffix trains on cached activations)."""
    class_weight: dict[int, float] | None = None
    """``options.class_weight`` resolved for the data: a weight per class index, or None."""

    @property
    def budget(self):
        """The call's :class:`~transferkit.training.budget.Budget`, or None."""
        return self.options.budget

    @property
    def epochs(self) -> int:
        return self.options.epochs

    @property
    def batch_size(self) -> int:
        return self.options.batch_size

    def backup(self, phase: int | None = None) -> Path | None:
        """The backup folder of the run (of one phase of a progressive run)."""
        return backup_dir(self.run_path, phase)


def resolve_epochs(epochs: int | None, budget) -> int:
    """``epochs`` as given, else 10 without a budget and up to 30 with one.

    Example:
        >>> resolve_epochs(None, None), resolve_epochs(None, "10min"), resolve_epochs(3, 60)
        (10, 30, 3)
    """
    if epochs is not None:
        return epochs
    return DEFAULT_EPOCHS if budget is None else MAX_BUDGET_EPOCHS
