"""One time basis for the deck's chart, table and sentences: training seconds, not evaluation.

A run's *training time* is its total wall time less the test evaluation
(which no curve shows and no choice depends on). A fine-tuning run that
continues a frozen run (:func:`~transferkit.reporting.naming.continuations`)
could not have started without it, so its *cumulative* time adds the frozen
run's: the chart places it after its frozen head, and the tables say so.
"""

from __future__ import annotations

from collections.abc import Mapping


def training_seconds(run) -> float | None:
    """Wall seconds the run spent training (features, fit): its total less the evaluation."""
    t = run.timings or {}
    total = t.get("total")
    if total is None:
        fit = t.get("fit")
        return None if fit is None else float(fit) + float(t.get("features") or 0.0)
    return max(float(total) - float(t.get("evaluate") or 0.0), 0.0)


def cumulative_seconds(run, cont: Mapping) -> float | None:
    """Training seconds including the frozen run a continuation starts from (see module doc)."""
    own = training_seconds(run)
    before = cont.get(run.name)
    if own is None or before is None:
        return own
    earlier = cumulative_seconds(before, cont)
    return own + (earlier or 0.0)
