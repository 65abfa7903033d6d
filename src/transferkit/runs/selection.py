"""Which of several runs to keep: chosen on the validation split, never the test split."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from transferkit.runs.record import Run


def final_validation(run: Run) -> tuple[float, float]:
    """``(accuracy, loss)`` of the run's final weights on its validation split (NaN if none)."""
    acc = run.history.get("val_accuracy") or [np.nan]
    loss = run.history.get("val_loss") or [np.nan]
    return float(acc[-1]), float(loss[-1])


def select_run(runs: Sequence[Run]) -> tuple[Run, str]:
    """The run whose final model scores best on validation, and a sentence saying why.

    Higher validation accuracy wins; a tie goes to the lower validation loss,
    then to the earlier run (the simpler model: a frozen head before its
    fine-tuning). Test scores play no part: choosing on them would report an
    optimistic test accuracy.

    Args:
        runs: Runs in the order they were trained, each with a ``val_accuracy`` history.

    Returns:
        ``(kept run, reason)``; the last run when no run has validation scores.

    Example:
        >>> def run(name, acc, loss):
        ...     return Run(name, {}, {"val_accuracy": acc, "val_loss": loss}, None, {})
        >>> head = run("frozen_head", [0.8, 0.9], [0.5, 0.3])
        >>> tuned = run("fine_tuned", [0.7, 0.85], [0.6, 0.4])
        >>> kept, why = select_run([head, tuned])
        >>> kept.name, why
        ('frozen_head', 'frozen_head: validation accuracy 0.9000 vs fine_tuned 0.8500')
    """
    if not runs:
        raise ValueError("select_run needs at least one run.")
    scored = [(run, *final_validation(run)) for run in runs]
    if all(np.isnan(acc) for _, acc, _ in scored):
        return runs[-1], f"{runs[-1].name}: the last run (no validation split to choose with)"
    order = sorted(range(len(scored)), key=lambda i: (-np.nan_to_num(scored[i][1], nan=-1),
                                                      np.nan_to_num(scored[i][2], nan=np.inf), i))
    best = scored[order[0]]
    others = ", ".join(f"{r.name} {acc:.4f}" for r, acc, _ in (scored[i] for i in order[1:]))
    reason = f"{best[0].name}: validation accuracy {best[1]:.4f}"
    return best[0], reason + (f" vs {others}" if others else "")
