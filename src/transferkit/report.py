"""Self-contained HTML reports and slide decks from runs (figures embedded, no network)."""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

from transferkit._atomic import atomic_write_text
from transferkit.backbones import BACKBONES
from transferkit.compare import COLUMNS, compare_runs
from transferkit.data import DataSplits
from transferkit.errors import ConfigurationError
from transferkit.training import Run

REPORT_SECTIONS = (
    "Comparison", "Learning curves", "Confusion matrices", "Per-class metrics",
    "Feature maps", "Sample predictions", "Configuration",
)
SLIDES = (
    "Dataset",
    "What transfer learning is",
    "Chosen pretrained model and its original purpose",
    "Fine-tuning steps",
    "Results: transfer vs from scratch",
    "Per-class view",
    "Feature maps",
    "Limitations and improvements",
    "Conclusion",
    "Configuration appendix",
)

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;font-size:0.9em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}img{max-width:100%}pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:0.8em}
.slide{min-height:90vh;border-bottom:2px solid #ddd;padding:1em 0;page-break-after:always;break-after:page}
@media print{.slide{border:none;min-height:auto}}
"""


def write_report(
    runs: Sequence[Run],
    path: str | os.PathLike,
    *,
    title: str = "transferkit report",
    data: DataSplits | None = None,
    slides: bool = False,
) -> Path:
    """Write one self-contained HTML file about ``runs`` (figures as data URIs).

    Args:
        runs: The runs to report on (trained now or loaded with ``Run.load``).
        path: Output ``.html`` file (written atomically).
        title: Page title.
        data: The dataset the runs were evaluated on; with it (and the runs'
            models) the report adds feature maps and sample predictions.
        slides: Write a 10-slide deck (:data:`SLIDES`, one per printed page)
            instead of the report (:data:`REPORT_SECTIONS`).

    Returns:
        The path written.

    Raises:
        ConfigurationError: If ``runs`` is empty.

    Example:
        >>> write_report([frozen, scratch], "out/report.html", data=data)  # doctest: +SKIP
        >>> write_report([frozen, scratch], "out/slides.html", data=data, slides=True)  # doctest: +SKIP
    """
    runs = list(runs)
    comparison = compare_runs(runs)
    parts = _slides(runs, comparison, data) if slides else _sections(runs, comparison, data)
    body = "\n".join(
        f'<section class="{"slide" if slides else "section"}" id="s{i}"><h2>{html.escape(name)}</h2>\n{content}</section>'
        for i, (name, content) in enumerate(parts, start=1)
    )
    page = (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )
    return atomic_write_text(path, page)


def _sections(runs, comparison, data) -> list[tuple[str, str]]:
    from transferkit.plots import (
        plot_confusion_matrix,
        plot_learning_curves,
        plot_per_class_metrics,
    )

    evaluated = [r for r in runs if r.evaluation]
    return [
        ("Comparison", _table(comparison)),
        ("Learning curves", _img(plot_learning_curves(runs))),
        ("Confusion matrices", "".join(f"<h3>{html.escape(r.name)}</h3>{_img(plot_confusion_matrix(r.evaluation))}"
                                       for r in evaluated) or "<p>No evaluations.</p>"),
        ("Per-class metrics", "".join(f"<h3>{html.escape(r.name)}</h3>{_img(plot_per_class_metrics(r.evaluation))}"
                                      f"<pre>{html.escape(r.evaluation.report)}</pre>" for r in evaluated)
         or "<p>No evaluations.</p>"),
        ("Feature maps", _feature_maps(runs, data)),
        ("Sample predictions", _predictions(runs, data)),
        ("Configuration", _configs(runs)),
    ]


def _slides(runs, comparison, data) -> list[tuple[str, str]]:
    from transferkit.plots import plot_learning_curves, plot_per_class_metrics

    best = comparison.best("test_accuracy") if any(r.evaluation for r in runs) else None
    transfer = [r for r in runs if (r.config.get("backbone") or {}).get("name") in BACKBONES]
    scratch = [r for r in runs if r not in transfer]
    content = {
        "Dataset": _dataset(runs, data),
        "What transfer learning is": (
            "<p>A network trained on a large dataset (ImageNet: 1.28 M images, 1,000 classes) "
            "already computes general visual features: edges and textures in early layers, "
            "object parts later. Transfer learning reuses those layers for a new task: freeze "
            "them, train a small new head on top, then optionally unfreeze the last layers and "
            "fine-tune gently. It needs far less data and compute than training from scratch.</p>"
        ),
        "Chosen pretrained model and its original purpose": _purposes(transfer),
        "Fine-tuning steps": _steps(runs),
        "Results: transfer vs from scratch": _table(comparison) + _img(plot_learning_curves(runs)),
        "Per-class view": (_img(plot_per_class_metrics(best and _by_name(runs, best["run"]).evaluation))
                           if best else "<p>No evaluations.</p>"),
        "Feature maps": _feature_maps(runs, data, limit=1),
        "Limitations and improvements": _limitations(runs),
        "Conclusion": _conclusion(comparison, transfer, scratch),
        "Configuration appendix": _configs(runs),
    }
    return [(name, content[name]) for name in SLIDES]


# --------------------------------------------------------------------------- pieces


def _img(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    return f'<img alt="figure" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _table(comparison) -> str:
    from transferkit.compare import _fmt

    head = "".join(f"<th>{c}</th>" for c in COLUMNS)
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in COLUMNS) + "</tr>"
                   for r in comparison.rows)
    return f"<table><tr>{head}</tr>{rows}</table>"


def _by_name(runs, name) -> Run:
    return next(r for r in runs if r.name == name)


def _feature_maps(runs, data, limit=None) -> str:
    from transferkit.features import default_feature_layers, extract_feature_maps
    from transferkit.plots import plot_feature_maps

    if data is None or not len(data.x_test):
        return "<p>Feature maps need the dataset: pass <code>data=</code> (CLI: <code>--data</code>).</p>"
    out = []
    for run in [r for r in runs if r.model is not None][:limit]:
        try:
            layer = default_feature_layers(run.model)[0]
            maps = extract_feature_maps(run.model, data.x_test[:1], layer)
        except (ConfigurationError, IndexError) as exc:
            out.append(f"<p>{html.escape(run.name)}: no feature maps ({html.escape(str(exc))}).</p>")
            continue
        fig = plot_feature_maps(data.x_test[0], maps[layer][0], layer=f"{run.name}: {layer}", top_k=15)
        out.append(f"<h3>{html.escape(run.name)}</h3>{_img(fig)}")
    return "".join(out) or "<p>No run carries its model; load runs with their model files.</p>"


def _predictions(runs, data) -> str:
    from transferkit.plots import plot_predictions

    if data is None:
        return "<p>Sample predictions need the dataset: pass <code>data=</code> (CLI: <code>--data</code>).</p>"
    out = []
    for run in runs:
        ev = run.evaluation
        if ev and len(ev.y_true) == len(data.y_test):
            out.append(f"<h3>{html.escape(run.name)}</h3>{_img(plot_predictions(data.x_test, ev, count=16))}"
                       f"{_img(plot_predictions(data.x_test, ev, mode='errors', count=8))}")
    return "".join(out) or "<p>No run was evaluated on this dataset's test split.</p>"


def _configs(runs) -> str:
    return "".join(f"<h3>{html.escape(r.name)}</h3><pre>{html.escape(json.dumps(r.config, indent=2))}</pre>"
                   for r in runs)


def _dataset(runs, data) -> str:
    cfg = runs[0].config.get("data", {})
    if data is not None:
        sizes = {s: len(data.split(s)[1]) for s in ("train", "val", "test")}
        names, shape = list(data.class_names), data.image_shape
    else:
        sizes, names, shape = cfg.get("sizes", {}), cfg.get("class_names", []), runs[0].config.get("input_shape")
    return (f"<p>Source: <code>{html.escape(str(cfg.get('source', getattr(data, 'source', '?'))))}</code></p>"
            f"<p>{len(names)} classes: {html.escape(', '.join(names))}</p>"
            f"<p>Images {shape}; split sizes: {html.escape(json.dumps(sizes))}. The validation split "
            "is stratified and carved from the training images; the test split is never used for "
            "model selection.</p>")


def _purposes(transfer) -> str:
    names = sorted({r.config["backbone"]["name"] for r in transfer})
    if not names:
        return "<p>No pretrained backbone among these runs.</p>"
    items = "".join(f"<li><b>{n}</b> (pretrained at {'/'.join(map(str, BACKBONES[n].pretrained_sizes))} px): "
                    f"{html.escape(BACKBONES[n].purpose)}</li>" for n in names)
    return f"<ul>{items}</ul>"


def _steps(runs) -> str:
    items = []
    for r in runs:
        bb = r.config.get("backbone") or {}
        state = ("frozen (only the head trains)" if bb.get("frozen")
                 else f"{bb.get('trainable_layers', '?')} of {bb.get('layers', '?')} backbone layers trainable")
        items.append(
            f"<li><b>{html.escape(r.name)}</b>: backbone {html.escape(str(bb.get('name')))} {state}; "
            f"lr {r.config.get('lr')}, {r.config.get('epochs')} epochs, augmentation "
            f"{'on' if r.config.get('augment') else 'off'}, cached features "
            f"{'yes' if r.config.get('cached_features') else 'no'}.</li>")
    return ("<p>BatchNorm layers stay frozen and run in inference mode throughout: their "
            "statistics were learned on ImageNet and small fine-tuning batches would corrupt them. "
            "Unfreeze from the top, where features are most task-specific, with a learning rate "
            f"10-100x lower than the head's.</p><ul>{''.join(items)}</ul>")


def _limitations(runs) -> str:
    sizes = runs[0].config.get("data", {}).get("sizes", {})
    return ("<ul><li>Results come from one seed; repeat with several seeds before "
            "trusting differences of a point or two.</li>"
            f"<li>Training set size here: {sizes.get('train', '?')} images; transfer's advantage "
            "shrinks as data grows.</li><li>CIFAR-10's 32x32 images are upscaled for ImageNet "
            "backbones; larger inputs cost time quadratically.</li><li>Improvements: more "
            "fine-tuning epochs with augmentation, a cosine schedule, larger input size, other "
            "backbones (see the backbone study).</li></ul>")


def _conclusion(comparison, transfer, scratch) -> str:
    rows = {r["run"]: r for r in comparison.rows}
    best = comparison.best("test_accuracy") if any(r["test_accuracy"] is not None for r in comparison.rows) else None
    text = f"<p>Best test accuracy: <b>{best['run']}</b> ({best['test_accuracy']:.3f}).</p>" if best else ""
    if transfer and scratch:
        t = max(rows[r.name]["test_accuracy"] or 0 for r in transfer)
        s = max(rows[r.name]["test_accuracy"] or 0 for r in scratch)
        text += (f"<p>Best transfer run {t:.3f} vs best from-scratch run {s:.3f}: "
                 f"{'+' if t >= s else ''}{(t - s) * 100:.1f} points.</p>")
    return text or "<p>No evaluated runs.</p>"
