"""The report's prose, computed from the runs: the summary, the discussion and the conclusion.

The sentences come from :mod:`transferkit.reporting.story` (the verdict and
the findings the deck states too); this module arranges them as a report
reads: a summary paragraph that gives the answer first, a discussion that
weighs it (fine-tuning's gain and cost, accuracy per minute, the most
frequent mistakes, how far the numbers can be trusted) and a conclusion.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from transferkit._text import plural
from transferkit.reporting import _parts as parts
from transferkit.reporting import story
from transferkit.reporting.caveats import accuracy_margin
from transferkit.reporting.naming import (
    backbone_label,
    best_run,
    dataset_label,
    display_names,
    pretrained_backbone,
)
from transferkit.reporting.report_parts import Figures, no_paths


def _test_images(run) -> int:
    import numpy as np

    return int(np.sum(run.evaluation.confusion_matrix)) if run and run.evaluation else 0


def _listing(names: Sequence[str]) -> str:
    """"A", "A and B", "A; B and C" (labels hold commas, so semicolons between them)."""
    names = list(names)
    return names[0] if len(names) == 1 else "; ".join(names[:-1]) + " and " + names[-1]


def summary(runs: Sequence, ctx: Mapping, cont: Mapping) -> str:
    """The opening paragraph: what was compared on what data, the verdict, and the findings behind it.

    The quick-run warning and notes come first; which run model.keras holds
    and the backbones left out follow.
    """
    names = display_names(runs)
    out = [f'<p class="quick">{parts.esc(parts.QUICK_NOTE)}</p>'] if ctx["quick"] else []
    out += [f'<p class="quick">{parts.esc(no_paths(n))}</p>' for n in ctx["notes"]]
    data_words = dataset_label(runs, ctx["data"])
    if data_words in ("Synthetic images", "Your images"):  # words, not a name: mid-sentence in lower case
        data_words = data_words.lower()
    classes = len((runs[0].config.get("data") or {}).get("class_names") or getattr(ctx["data"], "class_names", []))
    tested = _test_images(best_run(runs))
    about = ", ".join(filter(None, [plural(classes, "class") if classes else "",
                                    f"{tested:,} test images" if tested else ""]))
    found = story.findings(runs, cont, names)
    # The confusions are the discussion's; the summary keeps the answer and its cost.
    found = [f for f in found if not f.startswith("Most frequent mistakes")]
    what = f"compares {plural(len(runs), 'run')}" if len(runs) > 1 else "describes one run"
    out.append(f"<p>This report {what} on {parts.esc(data_words)}"
               f"{f' ({about})' if about else ''}: {parts.esc(_listing(names.values()))}. "
               f"<b>{parts.esc(story.verdict(runs))}</b> {parts.esc(' '.join(found))}</p>")
    out += [f"<p>{parts.esc(line)}</p>" for line in kept(runs)]
    for name, reason in ctx["skipped"].items():
        out.append(f"<p>Skipped backbone <b>{parts.esc(backbone_label(name))}</b>: "
                   f"{parts.esc(no_paths(reason))}</p>")
    return "".join(out)


def kept(runs: Sequence) -> list[str]:
    """Which run ``transferkit train`` saved as model.keras, and why (its ``config["kept"]``)."""
    label = display_names(runs)
    lines = []
    for run in runs:
        why = run.config.get("kept")
        if not why:
            continue
        why = why.split(": ", 1)[-1]
        for name in sorted(label, key=len, reverse=True):  # "vs frozen_head 0.78": in words
            why = why.replace(name, label[name])
        lines.append(f"model.keras holds {label[run.name]}, chosen on the validation split "
                     f"(never the test split): {why}.")
    return lines


def margin(runs: Sequence) -> float | None:
    """How far chance can move the best run's test accuracy, in points: the same margin as the
    limitations section states (:func:`~transferkit.reporting.caveats.accuracy_margin`)."""
    return accuracy_margin(best_run(runs))


def discussion(runs: Sequence, ctx: Mapping, cont: Mapping, figures: Figures) -> str:
    """Transfer vs scratch, fine-tuning's gain and cost, accuracy per minute, mistakes, trust."""
    names, best = display_names(runs), best_run(runs)
    if best is None:
        return "<p>No run was evaluated: there is nothing to discuss yet.</p>"
    tuned = story.fine_tuning_findings(runs, cont)
    pretrained = any(pretrained_backbone(r) for r in runs)
    per_minute = story.per_minute_finding(runs, cont, names)
    mistakes = story.confusions_finding(best, names[best.name])
    out = ["<h3>Transfer learning against training from scratch</h3>",
           f"<p>{parts.esc(story.verdict(runs))} The best run is {parts.esc(names[best.name])} with "
           f"{parts.pct(best.evaluation.accuracy)} test accuracy and a macro F1 of "
           f"{best.evaluation.f1:.2f}{figures.ref('results')}.</p>",
           "<h3>Did fine-tuning help, and at what cost?</h3>",
           "<p>" + parts.esc(" ".join(tuned) if tuned else (
               "No run fine-tuned a pretrained backbone after training its head, so this report "
               "cannot say." if pretrained else "No run used a pretrained backbone.")) + "</p>",
           "<h3>Accuracy per minute of training</h3>",
           "<p>" + parts.esc(per_minute or "Fewer than two runs learned more than chance with a "
                             "recorded time: no comparison of cost.") + "</p>",
           "<h3>Where the best run goes wrong</h3>",
           "<p>" + parts.esc((mistakes or f"{names[best.name]} made no mistake on the test split.")
                             .removesuffix(".") + figures.ref(f"cm:{best.name}") + ".") + "</p>",
           "<h3>How far these numbers can be trusted</h3>", parts.bullets(trust(runs, ctx))]
    return "".join(out)


def trust(runs: Sequence, ctx: Mapping) -> list[str]:
    """The limits of this comparison, from its own numbers (the general ones have their own section)."""
    best, spread = best_run(runs), margin(runs)
    out = []
    if ctx["quick"]:
        out.append("This was a quick run (a few images and epochs): it checks the pipeline, it "
                   "measures nothing.")
    if spread is not None:
        out.append(f"With {_test_images(best):,} test images, chance alone moves a test accuracy by "
                   f"about {spread:.1f} points (a 95 % margin, about two standard errors): closer "
                   "results than that are a tie.")
    out.append("Each run was trained once, with one seed; another seed moves results too.")
    out.append("The test split was scored once per run and chose nothing: model choices used the "
               "validation split.")
    return out


def conclusion(runs: Sequence, ctx: Mapping, cont: Mapping) -> str:
    """The answer again in two or three sentences, and what to do next."""
    names, best = display_names(runs), best_run(runs)
    if best is None:
        return "<p>No run was evaluated.</p>"
    spread = margin(runs)
    close = [r for r in runs if r.evaluation and r is not best and spread is not None
             and 100 * (best.evaluation.accuracy - r.evaluation.accuracy) < spread]
    text = [story.verdict(runs),
            f"{names[best.name]} is the run to keep ({parts.pct(best.evaluation.accuracy)} test accuracy)"
            + (f", though {_listing([names[r.name] for r in close])} "
               f"{'is' if len(close) == 1 else 'are'} within chance of it." if close else ".")]
    nxt = ["repeat the runs with several seeds"]
    if ctx["quick"]:
        nxt.insert(0, "run the full experiment (without --quick)")
    if spread is not None and spread > 3:
        nxt.append("score them on a larger test split")
    return f"<p>{parts.esc(' '.join(text))}</p><p>Next: {parts.esc(', '.join(nxt))}.</p>"
