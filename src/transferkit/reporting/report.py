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
from transferkit.data.splits import SPLIT_METHOD, DataSplits
from transferkit.errors import ConfigurationError, DataNotFoundError
from transferkit.reporting import _parts as parts
from transferkit.reporting import story
from transferkit.reporting._parts import same_test_split
from transferkit.reporting.naming import (
    backbone_label,
    continuations,
    display_names,
    report_title,
)
from transferkit.reporting.slides import deck_html
from transferkit.runs.layout import RUN_FILE
from transferkit.runs.record import Run

logger = logging.getLogger("transferkit")

REPORT_SECTIONS = (
    "Summary", "Data", "Models and training", "Results", "Learning curves",
    "Confusion matrices", "Per-class metrics", "Feature maps", "Where the model looks (Grad-CAM)",
    "Sample predictions",
    "Limitations, pitfalls and ethics", "Configuration",
)

_CSS = """
:root{--ink:#1b1d23;--muted:#5b6170;--line:#d9dce3;--accent:#c2410c;--head:#14213d}
body{font-family:"Source Sans 3","Segoe UI",Helvetica,Arial,sans-serif;margin:0 auto;padding:24px;
max-width:1100px;color:var(--ink);line-height:1.5;font-size:16px}
h1{color:var(--head);font-size:2em;margin:.4em 0}h2{color:var(--head);border-bottom:2px solid var(--line);
padding-bottom:.2em;margin-top:2em}h3{margin:1.2em 0 .4em}
table{border-collapse:collapse;margin:.6em 0;max-width:100%}td,th{border-bottom:1px solid var(--line);
padding:4px 10px;text-align:left;vertical-align:top;overflow-wrap:break-word}th{background:#f3f4f7}
table.results td+td,table.results th+th{text-align:right}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
pre{background:#f6f7f9;padding:8px;overflow-x:auto;font-size:.8em;max-width:100%;box-sizing:border-box}
.quick{background:#fff4e5;border-left:6px solid var(--accent);padding:.6em 1em;font-weight:600}
.note{color:var(--muted);font-size:.9em}
@media print{body{max-width:none;padding:0}h2{break-after:avoid}img{break-inside:avoid}}
"""


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
    body = "\n".join(f'<section id="s{i}"><h2>{parts.esc(name)}</h2>\n{content}</section>'
                     for i, (name, content) in enumerate(_sections(runs, ctx), start=1))
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{parts.esc(title)}</title><style>{_CSS}</style></head>"
            f"<body><h1>{parts.esc(title)}</h1>\n{body}\n</body></html>\n")
    return atomic_write_text(path, page)


def _sections(runs, ctx) -> list[tuple[str, str]]:
    from transferkit.reporting.plots import (
        plot_accuracy_vs_time,
        plot_confusion_matrix,
        plot_learning_curves,
        plot_per_class_metrics,
    )

    cont, label = continuations(runs), display_names(runs)
    evaluated = [r for r in runs if r.evaluation]
    names = "; ".join(label.values())  # the labels hold commas
    arch = "".join(f"<h3>{parts.esc(cap)}</h3>{parts.img(p, cap)}" for cap, p in ctx["figures"].items())
    return [
        ("Summary", summary(runs, ctx, cont)),
        ("Data", parts.table(["", ""], parts.dataset_rows(runs, ctx["data"]), "data")),
        ("Models and training",
         (parts.table(["Backbone", "Original purpose", "Pretrained at", "Status"],
                      parts.purposes_rows(runs, ctx["skipped"])) if parts.purposes_rows(runs, ctx["skipped"]) else "")
         + "<ul>" + "".join(f"<li>{parts.step(r, cont, label)}</li>" for r in runs) + "</ul>"
         + f'<p class="note">{parts.esc(parts.LAYER_NOTE)}</p>' + arch),
        ("Results", parts.results_table(runs, cont)
         + parts.img(plot_accuracy_vs_time(runs), f"Validation accuracy against training time for {names}")),
        ("Learning curves", parts.img(plot_learning_curves(runs),
                                      f"Accuracy and loss per epoch, train and validation, for {names}")),
        ("Confusion matrices", "".join(
            parts.img(plot_confusion_matrix(r.evaluation, name=label[r.name]),
                      f"Confusion matrix of {label[r.name]} on the {r.evaluation.split} split")
            for r in evaluated) or "<p>No run was evaluated.</p>"),
        ("Per-class metrics", parts.recall_table(evaluated) + "".join(
            parts.img(plot_per_class_metrics(r.evaluation, name=label[r.name]),
                      f"Precision, recall and F1 per class for {label[r.name]}")
            + f"<pre>{parts.esc(r.evaluation.report)}</pre>" for r in evaluated)
         or "<p>No run was evaluated.</p>"),
        ("Feature maps", parts.feature_maps(runs, ctx["data"])),
        ("Where the model looks (Grad-CAM)", parts.grad_cam_examples(runs, ctx["data"])
         + f'<p class="note">{parts.esc(parts.GRAD_CAM_NOTE)}</p>'),
        ("Sample predictions", predictions(runs, ctx["data"])),
        ("Limitations, pitfalls and ethics",
         "<h3>Limitations</h3>" + parts.bullets(parts.LIMITATIONS) + "<h3>Pitfalls</h3>"
         + parts.bullets(parts.PITFALLS) + "<h3>Ethics</h3>" + parts.bullets(parts.ETHICS)),
        ("Configuration", "".join(
            f"<details><summary>{parts.esc(label[r.name])} (run folder "
            f"<code>{parts.esc(r.name)}</code>)</summary><pre>"
            f"{parts.esc(json.dumps(r.config, indent=2))}</pre></details>" for r in runs)),
    ]


def summary(runs, ctx, cont) -> str:
    """The opening: quick-run warning, notes, the verdict and the findings, skipped backbones."""
    out = [f'<p class="quick">{parts.esc(parts.QUICK_NOTE)}</p>'] if ctx["quick"] else []
    out += [f'<p class="quick">{parts.esc(n)}</p>' for n in ctx["notes"]]
    out.append(f"<p>{plural(len(runs), 'run')}. <b>{parts.esc(story.verdict(runs))}</b></p>")
    out.append(parts.bullets(story.findings(runs, cont, display_names(runs))))
    out += [f"<p>{parts.esc(line)}</p>" for line in _kept(runs)]
    for name, reason in ctx["skipped"].items():
        out.append(f"<p>Skipped backbone <b>{parts.esc(backbone_label(name))}</b>: {parts.esc(reason)}</p>")
    return "".join(out)


def _kept(runs) -> list[str]:
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


def predictions(runs, data) -> str:
    from transferkit.reporting.image_plots import plot_predictions

    if data is None:
        return ("<p>Per-image predictions need the test images: give the dataset "
                "(<code>transferkit report ... --data PATH</code>).</p>")
    out, label = [], display_names(runs)
    for run in runs:
        if same_test_split(run, data):
            ev, name = run.evaluation, label[run.name]
            out.append(parts.img(plot_predictions(data.x_test, ev, count=16, name=name),
                                 f"16 test images with the predictions of {name}")
                       + parts.img(plot_predictions(data.x_test, ev, mode="errors", count=8, name=name),
                                   f"The eight most confident mistakes of {name}"))
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
