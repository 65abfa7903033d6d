"""The deck's story, computed from the runs: the verdict and the findings behind it.

:func:`verdict` is the one-sentence answer (transfer vs from scratch, in
points); :func:`findings` the sentences a conclusion states: what fine-tuning
added over the frozen head and at what time, which run bought the most
accuracy per minute, and where the best run goes wrong. Every number comes
from the runs' records; a finding the records cannot support is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from transferkit._text import plural
from transferkit.reporting._parts import pct, seconds
from transferkit.reporting.naming import (
    backbone_label,
    best_run,
    class_label,
    fine_tuned,
    pretrained_backbone,
)
from transferkit.reporting.timing import cumulative_seconds, training_seconds


def _accuracies(runs: Sequence) -> tuple[list[float], list[float]]:
    """Test accuracies of the evaluated runs: (with a pretrained backbone, from scratch)."""
    scored = [r for r in runs if r.evaluation]
    return ([r.evaluation.accuracy for r in scored if pretrained_backbone(r)],
            [r.evaluation.accuracy for r in scored if not pretrained_backbone(r)])


def verdict(runs: Sequence) -> str:
    """One sentence: the best transfer run against the best run from scratch, in points.

    It names no run (the conclusion does) so it can open the deck without
    repeating what follows.
    """
    transfer, scratch = _accuracies(runs)
    if not transfer and not scratch:
        return "No run was evaluated."
    if not transfer:
        return (f"No transfer run was evaluated: training from scratch reached "
                f"{pct(max(scratch))} test accuracy, with nothing to compare it to.")
    if not scratch:
        return (f"Best test accuracy of {plural(len(transfer), 'transfer run')}: "
                f"{pct(max(transfer))}; no run from scratch to compare with.")
    t, s = max(transfer), max(scratch)
    delta = 100 * (t - s)
    if abs(delta) < 0.05:
        return f"Transfer learning and training from scratch tie at {pct(t)} test accuracy."
    winner, loser = (("Transfer learning", "training from scratch") if delta > 0
                     else ("Training from scratch", "transfer learning"))
    return (f"{winner} beats {loser} by {abs(delta):.1f} points of test accuracy "
            f"({pct(max(t, s))} vs {pct(min(t, s))}).")


def fine_tuning_findings(runs: Sequence, cont: Mapping) -> list[str]:
    """Per fine-tuned run: the points it gained (or lost) over its frozen head, and the time it took.

    The frozen run is the one it continues (``cont``), else an evaluated
    frozen run of the same backbone. A continuation's extra time is all of
    its own; an independent run's is the difference of the two training
    times (evaluation excluded, :mod:`~transferkit.reporting.timing`).
    """
    return [_fine_tuning_sentence(*pair) for pair in _fine_tuning_pairs(runs, cont)]


def _fine_tuning_pairs(runs: Sequence, cont: Mapping) -> list[tuple[str, float, float, float | None]]:
    """``(backbone label, fine-tuned accuracy, frozen accuracy, extra seconds)`` per fine-tuned run."""
    scored = [r for r in runs if r.evaluation and pretrained_backbone(r)]
    out = []
    for tuned in (r for r in scored if fine_tuned(r, cont)):
        frozen = cont.get(tuned.name)
        if frozen is None or frozen.evaluation is None:
            frozen = next((r for r in scored if not fine_tuned(r, cont)
                           and pretrained_backbone(r) == pretrained_backbone(tuned)), None)
        if frozen is None:
            continue
        extra = training_seconds(tuned)
        if extra is not None and tuned.name not in cont:
            extra = None if training_seconds(frozen) is None else extra - training_seconds(frozen)
        out.append((backbone_label(pretrained_backbone(tuned)), tuned.evaluation.accuracy,
                    frozen.evaluation.accuracy, extra))
    return out


def _fine_tuning_sentence(backbone: str, tuned: float, frozen: float, extra: float | None) -> str:
    delta = 100 * (tuned - frozen)
    cost = ("" if extra is None else f" for {seconds(extra)} more training" if extra >= 0
            else f" with {seconds(-extra)} less training")
    if abs(delta) < 0.05:
        return f"Fine-tuning {backbone} gained nothing over the frozen head ({pct(tuned)} both){cost}."
    if delta > 0:
        return (f"Fine-tuning {backbone} helped: {delta:+.1f} points over the frozen head "
                f"({pct(tuned)} vs {pct(frozen)}){cost}.")
    return (f"Fine-tuning {backbone} did not help: it lost {-delta:.1f} points to the frozen head "
            f"({pct(tuned)} vs {pct(frozen)}){cost}.")


def per_minute_finding(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> str | None:
    """Which run bought the most test accuracy per minute of training; None under two candidates.

    A fine-tuning run is charged its frozen stage too: it could not have
    started without it. Runs at or below chance are left out, since a run
    that learned nothing in a second would otherwise win.
    """
    rates = {}
    for run in (r for r in runs if r.evaluation and training_seconds(r)):
        chance = 1 / max(len(run.evaluation.class_names), 1)
        if run.evaluation.accuracy <= chance:
            continue
        rates[run.name] = (run, cumulative_seconds(run, cont))
    if len(rates) < 2:
        return None
    run, spent = max(rates.values(), key=lambda p: p[0].evaluation.accuracy / p[1])
    counted = ", counting its frozen stage" if run.name in cont else ""
    return (f"Most accuracy per minute of training: {names.get(run.name, run.name)} "
            f"({pct(run.evaluation.accuracy)} in {seconds(spent)}{counted}).")


def confusions_finding(best, label: str, top: int = 3) -> str | None:
    """The best run's ``top`` most frequent mistakes ("cat → dog: 23 test images"), if recorded."""
    from transferkit.reporting.plots import most_confused_pairs

    ev = best.evaluation if best is not None else None
    if ev is None or getattr(ev, "confusion_matrix", None) is None:
        return None
    pairs = most_confused_pairs(ev, top=top)
    if not pairs:
        return None
    mistakes = "; ".join(f"{class_label(t)} → {class_label(p)}: {plural(n, f'{ev.split} image')}"
                         for t, p, n in pairs)
    return f"Most frequent mistake{'s' if len(pairs) > 1 else ''} ({label}): {mistakes}."


def findings(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> list[str]:
    """The conclusion's sentences: best run, fine-tuning's gain and cost, accuracy per minute, mistakes."""
    best = best_run(runs)
    if best is None:
        return []
    label = names.get(best.name, best.name)
    out = [f"Best run: {label} ({pct(best.evaluation.accuracy)} test accuracy)."]
    out += fine_tuning_findings(runs, cont)
    out += filter(None, [per_minute_finding(runs, cont, names), confusions_finding(best, label)])
    return out


def transfer_finding(runs: Sequence) -> str | None:
    """Transfer against scratch, said plainly when the usual claim (transfer wins) fails here."""
    transfer, scratch = _accuracies(runs)
    if not transfer or not scratch:
        return None
    delta = 100 * (max(transfer) - max(scratch))
    if abs(delta) < 0.05:
        return (f"Transfer learning did not beat training from scratch here: both reached "
                f"{pct(max(transfer))}.")
    if delta > 0:
        return (f"Transfer learning won, as expected: {delta:.1f} points above the best run "
                "from scratch.")
    return (f"Contrary to the usual result, transfer learning did not beat training from scratch "
            f"here ({pct(max(transfer))} vs {pct(max(scratch))}): check the backbone's input "
            "size, its preprocessing and the number of epochs.")


def interpretation(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> list[str]:
    """The sentences of the deck's "What the results mean": transfer, fine-tuning, cost, mistakes."""
    best = best_run(runs)
    if best is None:
        return ["No run was evaluated: nothing to interpret."]
    tuning = fine_tuning_findings(runs, cont)
    if any("did not help" in s for s in tuning):
        tuning.append("Where fine-tuning lost, its learning rate, its epochs or the layers "
                      "unfrozen did not suit this data: the frozen head is the result to use.")
    return list(filter(None, [transfer_finding(runs), *tuning, per_minute_finding(runs, cont, names),
                              confusions_finding(best, names.get(best.name, best.name), top=2)]))


def conclusion(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> list[str]:
    """The deck's last slide: the findings in a few short lines, not the interpretation again.

    The best run, the transfer margin, fine-tuning's gains and losses in one
    sentence, the best accuracy per minute and the most frequent mistake.
    """
    best = best_run(runs)
    if best is None:
        return []
    out = [f"Best run: {names.get(best.name, best.name)} ({pct(best.evaluation.accuracy)} test accuracy)."]
    transfer, scratch = _accuracies(runs)
    if transfer and scratch:
        delta = 100 * (max(transfer) - max(scratch))
        out.append(f"Pretrained features: {delta:+.1f} points against the best run from scratch."
                   if abs(delta) >= 0.05 else "Pretrained features: no gain over training from scratch.")
    out += fine_tuning_summary(runs, cont)
    out += filter(None, [per_minute_finding(runs, cont, names),
                         confusions_finding(best, names.get(best.name, best.name), top=1)])
    return out


def fine_tuning_summary(runs: Sequence, cont: Mapping, skip: int = 0) -> list[str]:
    """Fine-tuning's gains and losses in one sentence (ties in another), from the ``skip``-th run on.

    Example: "Fine-tuning helped MobileNetV2 (+7.9); did not help ResNet50 (-9.1) points
    over the frozen head."
    """
    pairs = _fine_tuning_pairs(runs, cont)[skip:]
    helped = [f"{b} ({100 * (t - f):+.1f})" for b, t, f, _ in pairs if t - f >= 0.0005]
    hurt = [f"{b} ({100 * (t - f):+.1f})" for b, t, f, _ in pairs if t - f <= -0.0005]
    same = [b for b, t, f, _ in pairs if abs(t - f) < 0.0005]
    out = []
    if helped or hurt:
        out.append("Fine-tuning " + "; ".join(filter(None, [
            f"helped {', '.join(helped)}" if helped else "",
            f"did not help {', '.join(hurt)}" if hurt else ""])) + " points over the frozen head.")
    if same:
        out.append(f"Fine-tuning changed nothing for {', '.join(same)}: same test accuracy as the "
                   "frozen head.")
    return out
