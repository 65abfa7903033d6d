"""The deck's own pieces: sample grid, pipeline diagram, fine-tuning steps, settings and results.

Each returns HTML for a slide of :mod:`transferkit.reporting.slides`, built
from the runs' records (and the dataset when given). The pipeline is drawn
with HTML boxes rather than a figure: crisp at any scale, and its text is
text a check (or a screen reader) can read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from transferkit._text import plural
from transferkit.reporting import _parts as parts
from transferkit.reporting.naming import (
    backbone_label,
    class_label,
    fine_tuned,
    pretrained_backbone,
    run_kind,
)
from transferkit.reporting.timing import cumulative_seconds

ROWS = 4
"""Most table rows a slide shows at a readable size; the rest are named as in the report."""


def sample_grid(data, *, per_class: int = 2, classes: int = 10) -> str:
    """A few training images per class, a column per class under its name; a line without data."""
    import numpy as np

    from transferkit.reporting.image_plots import plot_image_grid

    if data is None or not len(data.y_train):
        return ('<p class="note">No sample images: the dataset was not given '
                "(<code>transferkit report ... --data PATH</code>).</p>")
    names = list(data.class_names)[:classes]
    y = np.asarray(data.y_train).ravel()
    picks = [np.flatnonzero(y == c)[:per_class] for c in range(len(names))]
    rows = min(per_class, min(map(len, picks)))
    images = [data.x_train[picks[c][k]] for k in range(rows) for c in range(len(names))]
    titles = [class_label(n) if k == 0 else "" for k in range(rows) for n in names]
    more = len(data.class_names) - len(names)
    fig = plot_image_grid(images, columns=len(names), titles=titles, cell=1.15)
    alt = (f"Sample images: {plural(rows, 'training image')} of each class, "
           + ", ".join(map(class_label, names)) + (f", and {more} more classes" if more else ""))
    return parts.img(fig, alt)


def _params(x: int) -> str:
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k" if x >= 1e3 else str(x)


def _frozen_runs(run, runs: Sequence, cont: Mapping) -> list:
    """The run ``run`` continues (its head), then the frozen runs of its backbone in order."""
    bb = pretrained_backbone(run)
    return [r for r in [cont.get(run.name)] if r is not None] + [
        r for r in runs if pretrained_backbone(r) == bb and (r.config.get("backbone") or {}).get("frozen")]


def head_params(run, runs: Sequence, cont: Mapping) -> int | None:
    """The new head's parameters: all that trains in a frozen run of the same backbone."""
    for r in _frozen_runs(run, runs, cont):
        trainable = (r.config.get("params") or {}).get("trainable")
        if isinstance(trainable, int):
            return trainable
    return None


def pipeline_run(runs: Sequence, cont: Mapping):
    """The run the pipeline shows: the best fine-tuned transfer run, else the best transfer run."""
    transfer = [r for r in runs if pretrained_backbone(r)]
    tuned = [r for r in transfer if fine_tuned(r, cont)] or transfer
    return max(tuned, key=lambda r: r.evaluation.accuracy if r.evaluation else -1.0, default=None)


def share_sentence(run) -> str | None:
    """"56 % of parameters train (1.36 M of 2.42 M)", from the run's parameter counts."""
    share, p = parts.trained_share(run), run.config.get("params") or {}
    if share is None:
        return None
    return (f"{parts.pct(share)} of parameters train "
            f"({_params(p['trainable'])} of {_params(p['total'])})")


def pipeline(runs: Sequence, cont: Mapping, names: Mapping[str, str], data=None) -> str:
    """Input → resize → frozen part → trained part → head, as boxes, with the share that trains."""
    run = pipeline_run(runs, cont)
    if run is None:
        return '<p class="note">No pretrained backbone among these runs: nothing is frozen.</p>'
    cfg, bb = run.config, run.config.get("backbone") or {}
    shape = cfg.get("input_shape") or (cfg.get("data") or {}).get("image_shape") or \
        (list(data.image_shape) if data is not None else None)
    side = min(shape[:2]) if shape else None
    fed = min(bb["image_size"]) if bb.get("image_size") else side
    total, trains = bb.get("layers"), bb.get("trainable_layers") or 0
    p, head = cfg.get("params") or {}, head_params(run, runs, cont)
    classes = (cfg.get("classifier") or {}).get("num_classes") or len(
        (cfg.get("data") or {}).get("class_names") or []) or None
    backbone = backbone_label(pretrained_backbone(run))
    trained = (p.get("trainable") - head if isinstance(p.get("trainable"), int) and head is not None
               else None)
    boxes = [("input", "Input image", f"{side} × {side} px" if side else "")]
    if fed and side and fed != side:
        boxes.append(("step", "Resized in the model", f"{fed} × {fed} px"))
    boxes.append(("frozen", f"{backbone}: frozen", f"{total - trains} of {total} layers" if total else "",
                  _params(p["non_trainable"]) + " parameters" if isinstance(p.get("non_trainable"), int)
                  else ""))
    if trains:
        boxes.append(("trains", f"{backbone}: trains", f"{trains} of {total} layers",
                      f"{_params(trained)} parameters" if trained is not None else ""))
    boxes.append(("trains", "New head: trains", plural(classes, "class") if classes else "",
                  f"{_params(head)} parameters" if head is not None else ""))
    html = _boxes_html(boxes)
    captions = _pipeline_captions(run, runs, cont, names) or (
        [f"{names.get(run.name, run.name)}: {trains} of {total} backbone layers train "
         "(parameter counts not recorded)"] if total else [])
    return (html + "".join(f'<p class="pipe-caption">{parts.esc(c)}.</p>' for c in captions)
            + '<p class="note">Blue: weights kept from ImageNet; orange: weights this task trains.</p>')


def _boxes_html(boxes: Sequence[tuple[str, ...]]) -> str:
    """``(kind, title, line, ...)`` boxes joined by arrows, labelled as one figure."""
    # One label for screen readers: the boxes' text, in order, as the alt text of a figure would be.
    label = "Pipeline: " + " → ".join(", ".join([title, *filter(None, lines)])
                                      for _, title, *lines in boxes)
    cells = [f'<div class="box {kind}"><b>{parts.esc(title)}</b>'
             + "".join(f"<span>{parts.esc(line)}</span>" for line in lines if line) + "</div>"
             for kind, title, *lines in boxes]
    return (f'<div class="pipe" role="figure" aria-label="{parts.esc(label)}">'
            + '<span class="arrow" aria-hidden="true">→</span>'.join(cells) + "</div>")


def _pipeline_captions(run, runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> list[str]:
    """The share of parameters that trains, for the run drawn and for its frozen head."""
    bb = run.config.get("backbone") or {}
    frozen = next((r for r in _frozen_runs(run, runs, cont) if r is not run), None)
    out = []
    for r in (run, frozen):
        share = share_sentence(r) if r is not None else None
        if share is None:
            continue
        trains, total = (r.config.get("backbone") or {}).get("trainable_layers"), bb.get("layers")
        why = (": only the new head" if not trains else
               f", though only {trains} of {total} backbone layers do" if total else "")
        out.append(f"{names.get(r.name, r.name)}: {share}{why}")
    return out


def _schedule_words(run) -> str:
    recipe = run.config.get("recipe") or {}
    schedule = str(run.config.get("schedule") or recipe.get("schedule") or "")
    if "warmup" in schedule and "cosine" in schedule:
        return "with a short warm-up, then cosine decay"
    if schedule:
        return f"on a {schedule.replace('+', ' then ')} schedule"
    return "held constant"


def fine_tuning_steps(runs: Sequence, cont: Mapping) -> str:
    """The fine-tuning recipe as 4-6 numbered steps, with the numbers of the best fine-tuned run."""
    run = pipeline_run(runs, cont)
    if run is None or not fine_tuned(run, cont):
        return ('<p>No run fine-tuned a pretrained backbone. The steps would be: train a head on the '
                "frozen backbone, unfreeze its top layers, fine-tune at a low learning rate.</p>")
    bb, recipe = run.config.get("backbone") or {}, run.config.get("recipe") or {}
    head, first = cont.get(run.name), recipe.get("head_first") or {}
    lr, head_lr = run.config.get("lr"), (head.config.get("lr") if head is not None else None)
    epochs = head.epochs_run if head is not None else first.get("epochs")
    again = ""
    if head is not None and first.get("epochs"):  # the recipe found the head at chance: retrained
        again = (f"; it still scored at chance, so the head trained again for "
                 f"{plural(first['epochs'], 'epoch')} on cached features")
    steps = [("Train the new head on the frozen backbone"
              + (f" for {plural(epochs, 'epoch')}" if epochs else "")
              + (f" at learning rate {parts.num(head_lr)}" if head_lr else "")
              + ": its random weights cannot harm the pretrained features" + again + ".")]
    cut = recipe.get("unfreeze")
    share = share_sentence(run)
    steps.append("Unfreeze the top of the backbone"
                 + (f" (the last {cut} layers)" if isinstance(cut, int) else "")
                 + (f": {bb.get('trainable_layers')} of {bb.get('layers')} layers train"
                    if bb.get("layers") else "") + (f", {share}" if share else "") + ".")
    steps.append("Keep BatchNorm layers in inference mode: small batches would corrupt "
                 "their ImageNet statistics.")
    if head_lr and lr and lr >= head_lr:  # said as it was: not the usual lower rate
        steps.append(f"Fine-tune at learning rate {parts.num(lr)}, not below the head's "
                     f"(usually 10× lower), {_schedule_words(run)}.")
    else:
        ratio = f", {head_lr / lr:.0f}× below the head's" if head_lr and lr else ""
        steps.append(f"Fine-tune at a low learning rate, {parts.num(lr)}{ratio}, "
                     f"{_schedule_words(run)}.")
    best, value = run.best_epoch()
    patience = run.config.get("patience")
    if patience:
        steps.append(f"Stop after {plural(patience, 'epoch')} without progress and keep the best "
                     "epoch on validation images.")
    elif best is not None:
        steps.append(f"Watch validation accuracy after each epoch (best: epoch {best + 1} of "
                     f"{run.epochs_run}, {parts.pct(value)}).")
    n = len(run.evaluation.y_true) if run.evaluation is not None else 0
    steps.append("Test once" + (f", on {n:,} test images" if n else "")
                 + ", after every choice was made.")
    return '<ol class="steps">' + "".join(f"<li>{parts.esc(s)}</li>" for s in steps) + "</ol>"


def ordered(runs: Sequence, cont: Mapping, limit: int = ROWS) -> tuple[list, int]:
    """At most ``limit`` runs for a slide's table and how many are left out.

    The pipeline's run and the frozen run it continues come first, then the
    best run from scratch, then the others by test accuracy.
    """
    if len(runs) <= limit:
        return list(runs), 0
    first = pipeline_run(runs, cont)
    scratch = [r for r in runs if r.evaluation and not pretrained_backbone(r)]
    lead = [cont.get(first.name), first] if first is not None else []
    lead.append(max(scratch, key=lambda r: r.evaluation.accuracy, default=None))
    rest = sorted(runs, key=lambda r: -(r.evaluation.accuracy if r.evaluation else -1.0))
    chosen = list(dict.fromkeys(r.name for r in [*lead, *rest] if r is not None))[:limit]
    return [r for r in runs if r.name in chosen], len(runs) - len(chosen)


TIME_NOTE = ("* Training time excludes the test evaluation; a fine-tuned run's includes the "
             "frozen head it continues, as on the chart.")


def _note(left_out: int) -> str:
    """The time basis, and how many runs the table leaves to the report."""
    more = f" {plural(left_out, 'more run')} in the report." if left_out else ""
    return f'<p class="note">{parts.esc(TIME_NOTE)}{more}</p>'


def settings_table(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> str:
    """Per run: epochs, learning rate, batch size, share of parameters trained, cumulative time."""
    shown, left_out = ordered(runs, cont)
    rows = []
    for r in shown:
        rows.append([names.get(r.name, r.name), str(r.epochs_run), parts.num(r.config.get("lr")),
                     str(r.config.get("batch_size") or "-"), parts.pct(parts.trained_share(r)),
                     parts.seconds(cumulative_seconds(r, cont))])
    return (parts.table(["Run", "Epochs", "Learning rate", "Batch", "Parameters trained",
                         "Training time*"], rows, "results tight") + _note(left_out))


def results_table(runs: Sequence, cont: Mapping, names: Mapping[str, str]) -> str:
    """Test accuracy, epochs and cumulative training time: the chart's time basis."""
    shown, left_out = ordered(runs, cont)
    rows = [[names.get(r.name, r.name), parts.pct(r.evaluation.accuracy if r.evaluation else None),
             str(r.epochs_run), parts.seconds(cumulative_seconds(r, cont))] for r in shown]
    return (parts.table(["Run", "Test accuracy", "Epochs", "Training time*"], rows, "results tight")
            + _note(left_out))


def confused_examples(best, data, label: str, count: int = 3) -> str:
    """Test images of the best run's most frequent mistake (true → predicted); "" when none."""
    import numpy as np

    from transferkit.reporting.image_plots import plot_image_grid
    from transferkit.reporting.plots import most_confused_pairs

    if best is None or best.evaluation is None or not parts.same_test_split(best, data):
        return ""
    ev = best.evaluation
    pairs = most_confused_pairs(ev, top=1)
    if not pairs:
        return ""
    true, pred = (list(ev.class_names).index(n) for n in pairs[0][:2])
    idx = np.flatnonzero((np.asarray(ev.y_true) == true) & (np.asarray(ev.y_pred) == pred))[:count]
    words = f"{class_label(pairs[0][0])} → {class_label(pairs[0][1])}"
    fig = plot_image_grid([data.x_test[i] for i in idx], columns=count, cell=1.9,
                          title=f"{label}, most frequent mistake:\n{words} (true → predicted)")
    return parts.img(fig, f"{plural(len(idx), 'test image')} of {class_label(pairs[0][0])} "
                     f"that {label} took for {class_label(pairs[0][1])}")


def backbone_use(runs: Sequence, cont: Mapping) -> list[str]:
    """Per backbone used: its size, the input it was fed here and its best run's test accuracy.

    The first sentence names the model chosen: the backbone of the most accurate run.
    """
    out, best_of = [], {}
    for run in runs:
        name = pretrained_backbone(run)
        if name and run.evaluation and (name not in best_of or run.evaluation.accuracy
                                        > best_of[name].evaluation.accuracy):
            best_of[name] = run
    ranked = sorted(best_of.values(), key=lambda r: -r.evaluation.accuracy)
    for i, run in enumerate(ranked):
        total = (run.config.get("params") or {}).get("total")
        size = (run.config.get("backbone") or {}).get("image_size")
        fed = f", fed {size[0]} px images" if isinstance(size, list) and size else ""
        params = f": {total / 1e6:.2f} M parameters" if isinstance(total, int) else ""
        lead = "Chosen model" if i == 0 and len(ranked) > 1 else "Used here"
        out.append(f"{lead}, {backbone_label(pretrained_backbone(run))}{params}{fed}; "
                   f"best test accuracy {parts.pct(run.evaluation.accuracy)}, {run_kind(run, cont)}.")
    return out
