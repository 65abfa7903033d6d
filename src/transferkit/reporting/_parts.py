"""HTML pieces shared by the report and the slide deck: numbers, tables, text, feature maps, Grad-CAM."""

from __future__ import annotations

import base64
import html
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from transferkit._text import plural
from transferkit.errors import TransferkitError
from transferkit.models.registry import BACKBONES
from transferkit.reporting.naming import (
    backbone_label,
    backbone_words,
    class_label,
    dataset_label,
    display_names,
    run_label,
)
from transferkit.reporting.naming import pretrained_backbone as backbone_name
from transferkit.reporting.naming import run_kind as kind
from transferkit.reporting.timing import cumulative_seconds

logger = logging.getLogger("transferkit")

LAYER_NOTE = ("Layers are counted as every backbone layer but the input; trainable ones are "
              "those with weights that training updates (BatchNorm layers stay frozen).")
QUICK_NOTE = "Quick run: a few images and epochs to check the pipeline. These are not results."


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def num(x: float | None) -> str:
    """A learning rate or other small number as a person writes it: 0.001, 1e-05, 0.00025."""
    if x is None:
        return "-"
    return f"{float(x):.2g}"


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def seconds(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.0f} s" if x < 120 else f"{x / 60:.1f} min"


def img(fig_or_path, alt: str, *, dpi: int = 110) -> str:
    """An ``<img>`` with the figure (or PNG file) embedded as a data URI and ``alt`` text.

    A figure with text also carries ``data-min-text-px``: its smallest font in
    pixels of the PNG (points x dpi / 72), so a page check can scale it by the
    displayed width and tell whether the text is still readable.
    """
    smallest = ""
    if isinstance(fig_or_path, (str, os.PathLike)):
        data = Path(fig_or_path).read_bytes()
    else:
        buf = io.BytesIO()
        fig_or_path.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
        data = buf.getvalue()
        px = min_text_px(fig_or_path, dpi)
        smallest = "" if px is None else f' data-min-text-px="{px:.1f}"'
    return (f'<img alt="{esc(alt)}"{smallest} '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}">')


def min_text_px(fig, dpi: int) -> float | None:
    """The smallest visible text of ``fig`` in pixels at ``dpi``; None when it has no text."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip() and _shown(t)]
    return min(sizes) * dpi / 72 if sizes else None


def _shown(text) -> bool:
    """Whether a text artist is drawn: its axes (if any) and the axes' axis are visible."""
    ax = getattr(text, "axes", None)
    # axis("off") hides tick labels but not the title (image grids title each image).
    return ax is None or (ax.get_visible() and (ax.axison or text is ax.title))


def trained_share(run) -> float | None:
    """The share of the model's parameters that training updated, from ``config["params"]``."""
    params = run.config.get("params") or {}
    trainable, total = params.get("trainable"), params.get("total")
    return trainable / total if isinstance(trainable, int) and total else None


def table(header: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    """An HTML table; cells are escaped."""
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c).replace('_', '_<wbr>')}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def results_table(runs, cont, *, compact: bool = False) -> str:
    """The results, a row per run; ``compact`` (the slides) keeps run, accuracy, epochs, time."""
    rows, names = [], display_names(runs)
    for r in runs:
        ev = r.evaluation
        params = (r.config.get("params") or {}).get("trainable")
        row = [names[r.name], kind(r, cont), pct(ev.accuracy if ev else None),
               pct(ev.balanced_accuracy if ev else None),
               f"{ev.f1:.2f}" if ev else "-", str(r.epochs_run),
               f"{params:,}" if isinstance(params, int) else "-",
               seconds(cumulative_seconds(r, cont))]
        rows.append(row if not compact else [row[i] for i in _COMPACT])
    header = ["Run", "Kind", "Test accuracy", "Balanced accuracy", "Macro F1", "Epochs",
              "Trainable params", "Training time"]
    return table(header if not compact else [header[i] for i in _COMPACT], rows, "results")


_COMPACT = (0, 2, 5, 7)
"""The columns of the slides' results table (no kind: the run's label says it)."""

def dataset_rows(runs, data) -> list[list[str]]:
    cfg = runs[0].config.get("data") or {}
    prov = cfg.get("provenance") or getattr(data, "provenance", {}) or {}
    if data is not None:
        sizes = {s: len(data.split(s)[1]) for s in ("train", "val", "test")}
        names, shape = list(data.class_names), list(data.image_shape)
    else:
        sizes = cfg.get("sizes") or {}
        names = cfg.get("class_names") or []
        shape = cfg.get("image_shape") or runs[0].config.get("input_shape") or []
    limit = prov.get("limit_per_class")
    then = [f"limit {s['limit']} per class" if "limit" in s else f"subset {', '.join(map(class_label, s['subset']))}"
            for s in prov.get("then", [])]
    subset = ", ".join(filter(None, [
        f"{limit} images per class (train and test)" if limit else "",
        "classes chosen: " + ", ".join(map(class_label, prov["classes"])) if prov.get("classes") else "",
        *then])) or "all images"
    rows = [["Source", data_source(runs, data, sizes)],
            ["Classes", f"{len(names)}: {', '.join(map(class_label, names))}"],
            ["Images", " / ".join(f"{sizes.get(s, '?'):,} {s}" if isinstance(sizes.get(s), int)
                                  else f"? {s}" for s in ("train", "val", "test"))],
            ["Image size", "x".join(map(str, shape[:2])) + (f", {shape[2]} channels" if len(shape) > 2 else "")],
            ["Subset", subset]]
    if prov:
        rows.append(["Seed / validation split", f"{prov.get('seed', '?')} / "
                     f"{_validation_share(prov.get('validation_split'), sizes)}, stratified"])
    return rows


CIFAR10_CITATION = ("CIFAR-10 (Krizhevsky, A. (2009). Learning Multiple Layers of Features "
                    "from Tiny Images. Tech. report, University of Toronto)")


def data_source(runs, data, sizes: Mapping | None = None) -> str:
    """Where the images come from, as a reader can look it up: a citation, never a local path.

    CIFAR-10 is cited; an image folder is named by its folder's name and its
    number of images (its full path says where it sat on one machine only).
    """
    cfg = (runs[0].config.get("data") or {}) if runs else {}
    prov = cfg.get("provenance") or getattr(data, "provenance", None) or {}
    label = dataset_label(runs, data)
    if label == "CIFAR-10":
        return CIFAR10_CITATION
    if label == "Synthetic images":
        return "Synthetic images drawn by transferkit (a colour and stripe direction per class, with noise; no photos)"
    count = sum(v for v in (sizes or {}).values() if isinstance(v, int))
    images = f", {count:,} images" if count else ""
    folder = Path(str(prov.get("path") or "")).name
    if not folder:
        return f"Images given as arrays{images}"
    return f"Own photos: the folder {folder}{images}, one subfolder per class"


def _validation_share(asked, sizes: Mapping) -> str:
    """The validation split as held: small folders hold more than asked (folder.MIN_VALIDATION).

    Example:
        >>> _validation_share(0.1, {"train": 81, "val": 27})
        '25.0% of train (10.0% asked; raised to hold enough images to choose between stages)'
        >>> _validation_share(0.1, {"train": 900, "val": 100})
        '10.0% of train'
    """
    train, val = sizes.get("train"), sizes.get("val")
    if not isinstance(train, int) or not isinstance(val, int) or not train + val:
        return f"{pct(asked)} of train"
    held = val / (train + val)
    if asked is None or abs(held - asked) < 0.02:
        return f"{pct(held)} of train"
    return f"{pct(held)} of train ({pct(asked)} asked; raised to hold enough images to choose between stages)"


def purposes_rows(runs, skipped: Mapping[str, str] | None) -> list[list[str]]:
    rows = []
    for name in dict.fromkeys(filter(None, (backbone_name(r) for r in runs))):
        spec = BACKBONES.get(name)
        if spec is None:  # a block transferred from another model (two-stage transfer)
            rows.append([backbone_label(name), "transferred from a model trained earlier", "-", "used"])
            continue
        rows.append([spec.display_name, spec.purpose, "/".join(map(str, spec.pretrained_sizes)) + " px", "used"])
    for name, reason in (skipped or {}).items():
        spec = BACKBONES.get(name)
        rows.append([backbone_label(name), spec.purpose if spec else "-", "/".join(map(str, spec.pretrained_sizes))
                     + " px" if spec else "-", f"skipped: {backbone_words(reason)}"])
    return rows


def step(run, cont: Mapping, names: Mapping[str, str] | None = None) -> str:
    """One sentence on what a run trained, what was frozen, and with what settings.

    ``names``: ``{run name: label}`` (:func:`~transferkit.reporting.naming.display_names`);
    without it each run is named by :func:`~transferkit.reporting.naming.run_label`.
    """
    names = names or {}
    bb = run.config.get("backbone") or {}
    recipe = run.config.get("recipe") or {}
    total, trainable = bb.get("layers"), bb.get("trainable_layers")
    aug = run.config.get("augment") or recipe.get("augment")
    settings = (f"learning rate {num(run.config.get('lr'))}, {plural(run.epochs_run, 'epoch')}"
                + (f" (of {run.config.get('epochs')} planned)"
                   if run.config.get("epochs") not in (None, run.epochs_run) else "")
                + (f", {run.config.get('schedule') or recipe.get('schedule')} schedule"
                   if run.config.get("schedule") or recipe.get("schedule") else "")
                + (f", augmentation {aug if isinstance(aug, str) else 'on'}" if aug else "")
                + (", head trained on cached backbone features" if run.config.get("cached_features") else ""))
    # The label already says which backbone and how it trained: the sentence says the rest.
    if backbone_name(run) is None and bb.get("name") in BACKBONES:
        what = (f"random initial weights (no pretrained weights), {trainable} of {total} "
                "backbone layers trainable")
    elif backbone_name(run) is None:
        what = f"all {plural(total, 'layer')} trainable, from random initial weights"
    elif run.name in cont or not bb.get("frozen"):
        unfreeze = recipe.get("unfreeze")
        cut = (f"the last {unfreeze} layers unfrozen, " if isinstance(unfreeze, int)
               else "the whole backbone unfrozen, " if unfreeze == "all" else "")
        before = cont.get(run.name)
        after = f"continues {names.get(before.name) or run_label(before, cont)}: " if before else ""
        what = (f"{after}{cut}{trainable} of {total} backbone layers trainable, "
                "with a lower learning rate so the pretrained features change gently")
    else:
        what = (f"0 of {total} backbone layers trainable: only the new head trains, "
                "so its random weights cannot wreck the pretrained features")
    return f"<b>{esc(names.get(run.name) or run_label(run, cont))}</b>: {esc(what)}; {esc(settings)}."


def bullets(items: Sequence[str], cls: str = "") -> str:
    return f'<ul class="{cls}">' + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def depth_layers(model, count: int = 3) -> list[str]:
    """``count`` backbone layers at increasing depth whose maps still show structure.

    Chosen among activation outputs (falling back to convolutions) at least an
    eighth of the backbone's input size across, spread from shallow to deep.
    """
    import numpy as np

    from transferkit.models.anatomy import require_classifier

    model = require_classifier(model, "Feature maps")
    base = model.backbone
    # A backbone built for any size says None: the size it is fed in this model counts.
    dims = [d for d in model.backbone_input.shape[1:3] if d] or \
        [d for d in model.input_shape[1:3] if d] or [32]
    size = min(dims)
    outputs = []
    for layer in base.layers:
        try:
            shape = layer.output.shape
        except (AttributeError, ValueError):
            continue
        activation = not layer.weights and ("relu" in layer.name or "act" in layer.name)
        if activation and len(shape) == 4 and shape[1] and shape[1] >= max(6, size // 8):
            outputs.append(layer.name)
    if len(outputs) < count:
        outputs = [x.name for x in base.layers if type(x).__name__.endswith("Conv2D")]
    if len(outputs) <= count:
        return outputs
    picks = np.linspace(0, len(outputs) - 1, count + 1)[1:].round().astype(int)
    picks[0] = max(1, int(round((len(outputs) - 1) * 0.1)))
    return [outputs[i] for i in dict.fromkeys(picks.tolist())]


def same_test_split(run, data) -> bool:
    """Whether ``run`` was evaluated on exactly ``data``'s test split (labels in order)."""
    import numpy as np

    ev = run.evaluation
    return (data is not None and ev is not None and len(ev.y_true) > 0
            and np.array_equal(np.asarray(ev.y_true), np.asarray(data.y_test)))


GRAD_CAM_NOTE = ("Grad-CAM: bright regions are where the network found the evidence for the class "
                 "it predicted (the gradient-weighted feature maps of its last convolutional "
                 "layer). Wrong predictions show what misled it.")


def grad_cam_examples(runs, data, *, right: int = 4, wrong: int = 4, limit: int = 512) -> str:
    """Grad-CAM overlays of the best run with a model on some right and some wrong test images.

    The right ones are spread over the test split, the wrong ones are the most
    confident mistakes. Predictions come from the run's evaluation when it
    scored this very test split, else from the model on the first ``limit``
    test images.
    """
    import numpy as np

    from transferkit.models.gradcam import grad_cam
    from transferkit.reporting.image_plots import plot_grad_cam
    from transferkit.runs.evaluation import predict

    if data is None or not len(data.x_test):
        return ("<p>Grad-CAM is drawn on test images: give the dataset "
                "(<code>transferkit report ... --data PATH</code>).</p>")
    with_model = [r for r in runs if r.model is not None]
    if not with_model:
        return "<p>Grad-CAM needs the trained models; these run folders hold no model.keras.</p>"
    run = max(with_model, key=lambda r: r.evaluation.accuracy if r.evaluation else -1.0)
    label = display_names(runs)[run.name]
    if same_test_split(run, data):
        x, y, probs = data.x_test, data.y_test, np.asarray(run.evaluation.probabilities)
    else:
        x, y = data.x_test[:limit], data.y_test[:limit]
        probs = predict(run.model, x)
    pred = probs.argmax(1)
    confidence = probs[np.arange(len(pred)), pred]
    mistakes = np.flatnonzero(pred != y)
    mistakes = mistakes[np.argsort(-confidence[mistakes])][:wrong]
    hits = np.flatnonzero(pred == y)
    count = min(len(hits), right + wrong - len(mistakes))
    hits = hits[np.linspace(0, len(hits) - 1, count).astype(int)] if count else hits[:0]
    pick = np.concatenate([hits, mistakes]).astype(int)
    try:
        maps = grad_cam(run.model, x[pick], pred[pick])
    except TransferkitError as exc:
        logger.info("No Grad-CAM for %s: %s", run.name, exc)
        return f"<p>No Grad-CAM for {esc(label)}: {esc(exc)}</p>"
    fig = plot_grad_cam(x[pick], maps, predicted=pred[pick], true=y[pick],
                        class_names=list(data.class_names), confidence=confidence[pick],
                        name=label)
    return img(fig, f"{label}: Grad-CAM of {plural(len(hits), 'right prediction')} and "
               f"{plural(len(mistakes), 'wrong one')} on test images")
