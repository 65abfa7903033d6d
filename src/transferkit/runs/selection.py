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


def balanced_validation(run: Run, x_val, y_val) -> tuple[float, float]:
    """``(balanced accuracy, loss)`` of the run's model on the validation images."""
    from sklearn.metrics import balanced_accuracy_score

    from transferkit.models.features import predict_in_chunks

    predicted = predict_in_chunks(run.model, x_val).argmax(axis=-1)
    return float(balanced_accuracy_score(y_val, predicted)), final_validation(run)[1]


def select_run(runs: Sequence[Run], *, balanced_on=None) -> tuple[Run, str]:
    """The run whose final model scores best on validation, and a sentence saying why.

    Higher validation accuracy wins; a tie goes to the lower validation loss,
    then to the earlier run (the simpler model: a frozen head before its
    fine-tuning). Test scores play no part: choosing on them would report an
    optimistic test accuracy.

    Args:
        runs: Runs in the order they were trained, each with a ``val_accuracy`` history.
        balanced_on: ``(x_val, y_val)`` to choose by each run model's balanced
            accuracy on them instead: for runs trained with class weights, whose
            point is the small classes, which plain accuracy hardly sees.

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
    measure = "validation accuracy"
    if balanced_on is not None and len(balanced_on[1]) and all(r.model is not None for r in runs):
        scored = [(run, *balanced_validation(run, *balanced_on)) for run in runs]
        measure = "balanced validation accuracy"
    else:
        scored = [(run, *final_validation(run)) for run in runs]
    if all(np.isnan(acc) for _, acc, _ in scored):
        return runs[-1], f"{runs[-1].name}: the last run (no validation split to choose with)"
    order = sorted(range(len(scored)), key=lambda i: (-np.nan_to_num(scored[i][1], nan=-1),
                                                      np.nan_to_num(scored[i][2], nan=np.inf), i))
    best = scored[order[0]]
    others = ", ".join(f"{r.name} {acc:.4f}" for r, acc, _ in (scored[i] for i in order[1:]))
    reason = f"{best[0].name}: {measure} {best[1]:.4f}"
    return best[0], reason + (f" vs {others}" if others else "")
