"""Self-contained HTML reports and slide decks from runs (figures embedded, no network).

:func:`write_report` writes the report (:data:`REPORT_SECTIONS`) or, with
``slides=True``, the 10-slide deck of :mod:`transferkit.reporting.slides`.
:func:`load_report_inputs` opens run folders or a whole experiment folder and
:func:`rebuild_test_data` reloads the dataset a run recorded, so a report made
later can add feature maps, Grad-CAM and per-image predictions.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from transferkit._atomic import atomic_write_text
from transferkit._text import plural
from transferkit.data.splits import DataSplits
from transferkit.data.stratify import SPLIT_METHOD
from transferkit.errors import ConfigurationError, DataNotFoundError
from transferkit.reporting import _parts as parts
from transferkit.reporting import caveats, report_text
from transferkit.reporting._parts import same_test_split
from transferkit.reporting.naming import (
    best_run,
    class_label,
    continuations,
    display_names,
    report_title,
)
from transferkit.reporting.report_parts import (
    OPEN_FOR_PRINT,
    Figures,
    configuration,
    feature_maps,
    no_paths,
    recall_table,
)
from transferkit.reporting.slides import deck_html
from transferkit.reporting.timing import cumulative_seconds
from transferkit.runs.layout import RUN_FILE
from transferkit.runs.record import Run

logger = logging.getLogger("transferkit")

REPORT_SECTIONS = (
    "Summary", "Data", "Models and training", "Results", "Learning curves",
    "Confusion matrices", "Per-class metrics", "Feature maps", "Where the model looks (Grad-CAM)",
    "Sample predictions", "Discussion", "Conclusion",
    "Benefits, limitations, pitfalls and ethics", "Configuration",
)

_CSS = """
:root{--ink:#1b1d23;--muted:#5b6170;--line:#d9dce3;--accent:#c2410c;--head:#14213d}
body{font-family:"Source Sans 3","Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;padding:24px;
max-width:1100px;color:var(--ink);line-height:1.5;font-size:16px}
h1{color:var(--head);font-size:2em;margin:.4em 0}h2{color:var(--head);border-bottom:2px solid var(--line);
padding-bottom:.2em;margin-top:2em}h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.6em 0;max-width:100%}td,th{border-bottom:1px solid var(--line);
padding:4px 10px;text-align:left;vertical-align:top;overflow-wrap:break-word}th{background:#f3f4f7}
table.results td+td,table.results th+th{text-align:right}table.results td:last-child{white-space:nowrap}table.results td,table.results th{padding:4px 7px}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
figure{margin:1em 0 1.4em}figcaption{color:var(--muted);font-size:.95em;max-width:60em}
figure.cm img{max-width:min(100%,720px)}table.data thead{display:none}
pre{background:#f6f7f9;padding:8px;overflow-x:auto;font-size:.8em;max-width:100%;box-sizing:border-box}
.quick{background:#fff4e5;border-left:6px solid var(--accent);padding:.6em 1em;font-weight:600}
.note{color:var(--muted);font-size:.9em}
summary{cursor:pointer}
@media print{body{max-width:none;padding:0;font-size:11pt}h2,h3{break-after:avoid}
figure,img,.run-block,table,pre{break-inside:avoid}
details::details-content{content-visibility:visible;display:contents}
details pre{break-inside:auto;white-space:pre-wrap;overflow-wrap:anywhere;columns:2;font-size:7.5pt}
summary{break-after:avoid;font-weight:600}}
"""
# Printed, every block (a figure and its caption, a run's classification report) stays
# on one page, and the folded configuration opens (also by OPEN_FOR_PRINT, for browsers
# without ::details-content).


def write_report(
    runs: Sequence[Run],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    data: DataSplits | None = None,
    slides: bool = False,
    quick: bool = False,
    skipped: Mapping[str, str] | None = None,
    figures: Mapping[str, str | os.PathLike] | None = None,
    notes: Sequence[str] = (),
) -> Path:
    """Write one self-contained HTML file about ``runs`` (figures as data URIs).

    The report opens with a summary that states the verdict, numbers its
    figures with captions, discusses and concludes, and prints on portrait
    pages with no figure or classification report split and its
    configuration opened; it names no local path (docs/reports.rst).

    Args:
        runs: The runs to report on (trained now or loaded with ``Run.load``).
        path: Output ``.html`` file (written atomically).
        title: Page title; None: made from the dataset and what the runs
            compare (:func:`transferkit.reporting.naming.report_title`,
            "CIFAR-10: transfer learning vs training from scratch").
        data: The dataset the runs were evaluated on; with it (and the runs'
            models) the report adds feature maps and, where it is the same
            test split, per-image predictions.
        slides: Write the 10-slide deck (:data:`transferkit.reporting.slides.SLIDES`,
            16:9, one printed landscape page each) instead of the report.
        quick: The runs come from a ``--quick`` run: every page says so.
        skipped: Backbones left out, with the reason (named in tables and slides).
        figures: More PNG files to embed, ``{caption: path}`` (e.g. architecture
            figures); missing files are left out.
        notes: Lines shown prominently at the top (e.g. fallbacks taken).

    Returns:
        The path written.

    Raises:
        ConfigurationError: If ``runs`` is empty.

    Example:
        >>> write_report([frozen, scratch], "out/report.html", data=data)  # doctest: +SKIP
        >>> write_report([frozen, scratch], "out/slides.html", data=data, slides=True)  # doctest: +SKIP
    """
    runs = list(runs)
    if not runs:
        raise ConfigurationError("Nothing to report: no runs given.")
    figures = {k: Path(v) for k, v in (figures or {}).items() if Path(v).is_file()}
    title = title or report_title(runs, data)
    ctx = {"title": title, "data": data, "quick": quick, "skipped": dict(skipped or {}),
           "figures": figures, "notes": list(notes)}
    if slides:
        return atomic_write_text(path, deck_html(runs, ctx))
    # A report is handed in or mailed: no reason names a folder of this machine.
    ctx["skipped"] = {k: no_paths(v) for k, v in ctx["skipped"].items()}
    body = "\n".join(f'<section id="s{i}"><h2>{parts.esc(name)}</h2>\n{content}</section>'
                     for i, (name, content) in enumerate(_sections(runs, ctx), start=1))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{parts.esc(title)}</title><style>{_CSS}</style>{OPEN_FOR_PRINT}</head>"
            f"<body><h1>{parts.esc(title)}</h1>\n{body}\n</body></html>\n")
    return atomic_write_text(path, page)


def _sections(runs, ctx) -> list[tuple[str, str]]:
    """The sections in reading order: figures are numbered as they are made, so order matters."""
    cont, label, figs = continuations(runs), display_names(runs), Figures()
    evaluated = [r for r in runs if r.evaluation]
    none = "<p>No run was evaluated.</p>"
    out = [("Summary", report_text.summary(runs, ctx, cont)),
           ("Data", parts.table(["", ""], parts.dataset_rows(runs, ctx["data"]), "data")),
           ("Models and training", _models(runs, ctx, cont, figs)),
           ("Results", parts.results_table(runs, cont) + _time_figure(runs, cont, figs)),
           ("Learning curves", _curves_figure(runs, figs))]
    out.append(("Confusion matrices", "".join(_confusion(r, label[r.name], figs) for r in evaluated) or none))
    out.append(("Per-class metrics", recall_table(evaluated)
                + "".join(_per_class(r, label[r.name], figs) for r in evaluated) or none))
    out.append(("Feature maps", feature_maps(runs, ctx["data"], figs)))
    with_model = [r for r in runs if r.model is not None]  # the run grad_cam_examples draws
    cam = max(with_model, key=lambda r: r.evaluation.accuracy if r.evaluation else -1.0, default=None)
    out.append(("Where the model looks (Grad-CAM)", figs.wrap(
        parts.grad_cam_examples(runs, ctx["data"]),
        f"Grad-CAM of {label[cam.name] if cam else 'the best run'}, the most accurate run with a saved "
        "model: each test image above the map of where the network found its evidence for the class "
        "it predicted. Right predictions should light up the object; wrong ones show what misled it.")
        + f'<p class="note">{parts.esc(parts.GRAD_CAM_NOTE)}</p>'))
    out.append(("Sample predictions", predictions(runs, ctx["data"], figs)))
    out.append(("Discussion", report_text.discussion(runs, ctx, cont, figs)))
    out.append(("Conclusion", report_text.conclusion(runs, ctx, cont)))
    # The deck's slide 9, in full: each part names this data and budget where it can.
    out.append(("Benefits, limitations, pitfalls and ethics", "".join(
        f"<h3>{head}</h3>" + parts.bullets(part(runs, ctx["data"])) for head, part in (
            ("Benefits", caveats.benefits), ("Limitations", caveats.limitations),
            ("Pitfalls", caveats.pitfalls), ("Ethics", caveats.ethics)))))
    out.append(("Configuration", configuration(runs)))
    return out


def _models(runs, ctx, cont, figs: Figures) -> str:
    label, purposes = display_names(runs), parts.purposes_rows(runs, ctx["skipped"])
    return ((parts.table(["Backbone", "Original purpose", "Pretrained at", "Status"], purposes)
             if purposes else "")
            + "<ul>" + "".join(f"<li>{parts.step(r, cont, label)}</li>" for r in runs) + "</ul>"
            + f'<p class="note">{parts.esc(parts.LAYER_NOTE)}</p>'
            + "".join(figs(p, cap, f"{cap}: its layers, their output shapes and which of them trained.")
                      for cap, p in ctx["figures"].items()))


def _time_figure(runs, cont, figs: Figures) -> str:
    from transferkit.reporting.plots import plot_accuracy_vs_time

    names, best = display_names(runs), best_run(runs)
    # The chart's time basis (and the table's): cumulative training time, evaluation left out.
    spent = cumulative_seconds(best, cont) if best else None
    where = (f" The best test accuracy is {parts.pct(best.evaluation.accuracy)} ({names[best.name]}"
             + (f", after {parts.seconds(spent)} of training)." if spent is not None else ").") if best else "")
    return figs(plot_accuracy_vs_time(runs), "Validation accuracy against training time for "
                + "; ".join(names.values()),
                "Validation accuracy against cumulative training time (a fine-tune starts after its "
                "frozen head; the test evaluation is left out, as in the table); a star marks each "
                "run's test accuracy at the end of its curve. Higher and further left is better."
                + where, key="results")


def _curves_figure(runs, figs: Figures) -> str:
    from transferkit.reporting.plots import plot_learning_curves

    names = display_names(runs)
    last = "; ".join(f"{names[r.name]} {parts.pct(r.history['val_accuracy'][-1])}"
                     for r in runs if r.history.get("val_accuracy"))
    return figs(plot_learning_curves(runs), "Accuracy and loss per epoch, train and validation, for "
                + "; ".join(names.values()),
                "Accuracy and loss per epoch, training (solid) and validation (dashed). A validation "
                "curve that falls while training still rises is overfitting"
                + (f". Final validation accuracy: {last}." if last else "."))


def _confusion(run, name: str, figs: Figures) -> str:
    from transferkit.reporting.plots import most_confused_pairs, plot_confusion_matrix

    ev = run.evaluation
    pair = most_confused_pairs(ev, top=1)
    worst = (f" The most frequent mistake: {class_label(pair[0][0])} taken for {class_label(pair[0][1])} "
             f"({plural(pair[0][2], 'image')})." if pair else " It made no mistake.")
    return figs(plot_confusion_matrix(ev, name=name, normalize="colour"),
                f"Confusion matrix of {name} on the {ev.split} split: counts per true and predicted class",
                f"{name} on the {ev.split} split ({parts.pct(ev.accuracy)} correct): each cell counts the "
                "images of a true class (row) given a predicted class (column); the colour is the row's "
                f"share, so the diagonal reads as recall.{worst}", key=f"cm:{run.name}", cls="cm")


def _per_class(run, name: str, figs: Figures) -> str:
    from transferkit.reporting.plots import plot_per_class_metrics

    ev = run.evaluation
    weakest = min(ev.per_class.items(), key=lambda kv: kv[1]["f1"], default=None)
    worst = f" Weakest class: {class_label(weakest[0])} (F1 {weakest[1]['f1']:.2f})." if weakest else ""
    return (f'<div class="run-block"><h3>{parts.esc(name)}</h3>'
            + figs(plot_per_class_metrics(ev, name=name), f"Precision, recall and F1 per class for {name}",
                   f"Precision, recall and F1 of each class for {name} (macro F1 {ev.f1:.2f}).{worst}")
            + f'<p class="note">Classification report ({parts.esc(ev.split)} split, scikit-learn):</p>'
            + f"<pre>{parts.esc(ev.report)}</pre></div>")


def predictions(runs, data, figs: Figures) -> str:
    import numpy as np

    from transferkit.reporting.image_plots import plot_predictions

    if data is None:
        return ("<p>Per-image predictions need the test images: give the dataset "
                "(<code>transferkit report ... --data PATH</code>).</p>")
    out, label = [], display_names(runs)
    for run in runs:
        if same_test_split(run, data):
            ev, name = run.evaluation, label[run.name]
            right = int(np.sum(np.asarray(ev.probabilities)[:16].argmax(1) == np.asarray(ev.y_true)[:16]))
            out.append(figs(plot_predictions(data.x_test, ev, count=16, name=name),
                            f"16 test images with the predictions of {name}",
                            f"The first 16 test images with {name}'s prediction and its confidence: "
                            f"{right} of {min(16, len(ev.y_true))} right.")
                       + figs(plot_predictions(data.x_test, ev, mode="errors", count=8, name=name),
                              f"The eight most confident mistakes of {name}",
                              f"The mistakes {name} made with the most confidence: look for labels a "
                              "person would question, or classes that look alike."))
    return "".join(out) or "<p>No run was evaluated on this dataset's test split.</p>"


def load_report_inputs(paths: Sequence[str | os.PathLike]) -> tuple[list[Run], dict]:
    """Runs from run folders and experiment folders, with what the experiment recorded.

    An experiment folder (``transferkit run NAME --out DIR``) holds
    ``metrics.json`` and one folder per run; its runs come in the order the
    experiment recorded, with its mode (``quick``), skipped backbones and
    ``architecture_*.png`` figures.

    Returns:
        ``(runs, context)``: ``context`` has ``quick``, ``skipped`` and
        ``figures`` (the title :func:`write_report` makes from the runs).

    Raises:
        DataNotFoundError: For a folder that holds neither.
    """
    runs: list[Run] = []
    ctx: dict = {"quick": False, "skipped": {}, "figures": {}}
    for path in map(Path, paths):
        if (path / RUN_FILE).is_file():
            runs.append(Run.load(path))
            continue
        metrics_file = path / "metrics.json"
        subdirs = sorted(p.parent for p in path.glob(f"*/{RUN_FILE}"))
        if not subdirs:
            raise DataNotFoundError(f"{path} holds no {RUN_FILE}: not a transferkit run or experiment folder.")
        metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
        order = list(metrics.get("runs", {}))
        subdirs.sort(key=lambda p: order.index(p.name) if p.name in order else len(order))
        runs += [Run.load(p) for p in subdirs]
        ctx["quick"] |= metrics.get("mode") == "quick"
        ctx["skipped"].update(metrics.get("skipped") or {})
        ctx["figures"].update({f"Architecture: {p.stem.removeprefix('architecture_')}": p
                               for p in sorted(path.glob("architecture_*.png"))})
    return runs, ctx


def rebuild_test_data(runs: Sequence[Run], path: str | os.PathLike,
                      *, image_size: int | None = None) -> DataSplits:
    """Load ``path`` the way the runs' data was loaded (their recorded provenance).

    CIFAR-10 gets the same classes, per-class limit, seed and validation
    split; an image folder the same image size (or ``image_size``), resize
    mode, splits and seed. Without provenance (older runs), CIFAR-10 class
    names load CIFAR-10, anything else loads an image folder.

    Raises:
        ConfigurationError: If the image size cannot be known for an image folder.
    """
    from transferkit.data.cifar import CIFAR10_CLASSES, load_cifar10
    from transferkit.data.folder import load_image_folder

    cfg = runs[0].config.get("data") or {}
    prov = dict(cfg.get("provenance") or {})
    names = cfg.get("class_names") or []
    loader = prov.get("loader") or ("cifar10" if names and set(names) <= set(CIFAR10_CLASSES) else "image_folder")
    if loader == "cifar10":
        data = load_cifar10(path, classes=prov.get("classes") or (names if names and list(names) != list(CIFAR10_CLASSES) else None),
                            limit_per_class=prov.get("limit_per_class"), seed=prov.get("seed", 0),
                            validation_split=prov.get("validation_split", 0.1), download=False)
    else:
        size = image_size or prov.get("image_size") or (cfg.get("image_shape") or [None])[:2]
        size = tuple(size) if isinstance(size, list) and None not in size else size
        if size in (None, [None]):
            raise ConfigurationError("The runs do not record their image size: pass --image-size.")
        if prov.get("split_method") != SPLIT_METHOD and prov.get("test_split"):
            # Older runs drew their held-out images another way: the same seed now picks
            # others, so a test split drawn from the folder may hold training images.
            logger.warning("These runs were recorded before transferkit drew splits with "
                           "scikit-learn: a test split drawn from %s may differ from theirs. "
                           "A folder with its own test/ folder is scored exactly.", path)
        data = load_image_folder(path, image_size=size, resize=prov.get("resize", "crop"),
                                 validation_split=prov.get("validation_split", 0.1),
                                 test_split=prov.get("test_split", 0.1),
                                 class_names=prov.get("class_names") or names or None,
                                 seed=prov.get("seed", 0))
    for step in prov.get("then", []):
        data = data.subset(step["subset"]) if "subset" in step else data.limit(step["limit"], seed=step["seed"])
    return data
