"""Side-by-side comparison of runs: a table, a ranking, and overlaid learning curves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from transferkit.errors import ConfigurationError
from transferkit.runs.record import Run

COLUMNS = (
    "run",
    "test_accuracy",
    "test_balanced_accuracy",
    "test_f1",
    "best_val_accuracy",
    "best_epoch",
    "epochs_run",
    "trainable_params",
    "total_params",
    "train_time_s",
)
_HIGHER_IS_BETTER = {"test_accuracy", "test_balanced_accuracy", "test_f1", "best_val_accuracy"}
_LOWER_IS_BETTER = {"train_time_s", "trainable_params", "total_params", "epochs_run"}


@dataclass
class Comparison:
    """A comparison of runs: one row per run (see :data:`COLUMNS`).

    Attributes:
        rows: One dict per run, in the order given.
        runs: The runs compared.
    """

    rows: list[dict]
    runs: list[Run]

    @property
    def table(self) -> list[dict]:
        """The rows, under a name that reads well (``comparison.table``)."""
        return self.rows

    def to_dict(self) -> dict:
        """JSON-serialisable form: ``{"columns": [...], "rows": [...]}``."""
        return {"columns": list(COLUMNS), "rows": self.rows}

    def to_markdown(self) -> str:
        """The table as GitHub-flavoured Markdown."""
        header = "| " + " | ".join(COLUMNS) + " |"
        rule = "|" + "|".join("---" if c == "run" else "---:" for c in COLUMNS) + "|"
        lines = [header, rule]
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt(row[c]) for c in COLUMNS) + " |")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def best(self, metric: str = "test_accuracy") -> dict:
        """The row that is best on ``metric`` (max for accuracies/F1, min for time and sizes).

        Raises:
            ConfigurationError: For an unknown metric, or if no run has a value for it.
        """
        if metric not in _HIGHER_IS_BETTER | _LOWER_IS_BETTER:
            raise ConfigurationError(
                f"Cannot rank by {metric!r}; use one of {sorted(_HIGHER_IS_BETTER | _LOWER_IS_BETTER)}."
            )
        rows = [r for r in self.rows if r[metric] is not None]
        if not rows:
            raise ConfigurationError(f"No run has a value for {metric!r}.")
        pick = max if metric in _HIGHER_IS_BETTER else min
        return pick(rows, key=lambda r: r[metric])

    def plot(self, path=None):
        """Overlay the runs' learning curves (accuracy and loss); see :func:`transferkit.reporting.plots.plot_learning_curves`."""
        from transferkit.reporting.plots import plot_learning_curves

        return plot_learning_curves(self.runs, path=path)


def compare_runs(runs: Sequence[Run]) -> Comparison:
    """Compare runs (trained now or loaded with :meth:`Run.load`).

    Args:
        runs: At least one :class:`~transferkit.runs.record.Run`.

    Returns:
        A :class:`Comparison`.

    Raises:
        ConfigurationError: If ``runs`` is empty or holds something else.

    Example:
        >>> cmp = compare_runs([transfer_run, baseline_run])  # doctest: +SKIP
        >>> print(cmp.to_markdown())  # doctest: +SKIP
        >>> cmp.best("test_accuracy")["run"]  # doctest: +SKIP
    """
    runs = list(runs)
    if not runs:
        raise ConfigurationError("compare_runs needs at least one run.")
    for r in runs:
        if not isinstance(r, Run):
            raise ConfigurationError(f"compare_runs takes Run objects, got {type(r).__name__}.")
    return Comparison([_row(r) for r in runs], runs)


def _row(run: Run) -> dict:
    ev = run.evaluation
    metric = "val_accuracy" if "val_accuracy" in run.history else "accuracy"
    epoch, value = run.best_epoch(metric)
    params = run.config.get("params", {})
    return {
        "run": run.name,
        "test_accuracy": ev.accuracy if ev else None,
        "test_balanced_accuracy": ev.balanced_accuracy if ev else None,
        "test_f1": ev.f1 if ev else None,
        "best_val_accuracy": value if metric == "val_accuracy" else None,
        "best_epoch": None if epoch is None else epoch + 1,
        "epochs_run": run.epochs_run,
        "trainable_params": params.get("trainable"),
        "total_params": params.get("total"),
        "train_time_s": run.timings.get("total"),
    }


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value <= 1 else f"{value:.1f}"
    if isinstance(value, int) and value >= 10000:
        return f"{value:,}"
    return str(value)
