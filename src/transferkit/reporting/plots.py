"""Every figure transferkit draws. Each returns a matplotlib Figure and saves it when given a path.

Figures are drawn with the object-oriented API on the headless Agg canvas,
so no window ever opens and pyplot's global state is never touched (the
confusion matrix is scikit-learn's ``ConfusionMatrixDisplay``, drawn on axes
given to it, so it opens no pyplot figure either).
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure

from transferkit.errors import ConfigurationError
from transferkit.reporting.image_plots import save_figure
from transferkit.reporting.naming import continuations, display_names


def _runs(runs) -> list:
    runs = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    if not runs:
        raise ConfigurationError("Nothing to plot: no runs given.")
    return runs


def _offsets(runs) -> dict[str, int]:
    """Epochs before each run's first epoch (the frozen run's, for a continuation)."""
    cont = continuations(runs)
    return {r.name: (cont[r.name].epochs_run if r.name in cont else 0) for r in runs}


def _names_title(runs) -> str:
    names = list(display_names(runs).values())  # semicolons below: labels hold commas
    return " vs ".join(names) if len(names) <= 3 else f"{len(names)} runs: " + "; ".join(names[:3]) + "; ..."


def plot_learning_curves(runs, *, path: str | os.PathLike | None = None) -> Figure:
    """Accuracy and loss per epoch, train (solid) vs validation (dashed), runs overlaid.

    A fine-tuning run that continues a frozen run (:func:`continuations`) is
    drawn after the frozen run's epochs, joined to its last point, with the
    boundary marked by a dotted vertical line. Epoch ticks are integers and the
    legend sits below the axes, clear of the data; it and the title name each
    run as reports do ("MobileNetV2, fine-tuned", not its identifier).

    Args:
        runs: A :class:`~transferkit.runs.record.Run` or a list of them.
        path: Save the figure here (format from the suffix) when given.

    Returns:
        A Figure with two axes: accuracy and loss.

    Example:
        >>> fig = plot_learning_curves([transfer_run, baseline_run], path="curves.png")  # doctest: +SKIP
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import MaxNLocator

    runs = _runs(runs)
    cont, offsets = continuations(runs), _offsets(runs)
    fig = Figure(figsize=(11, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    colors = {r.name: f"C{i % 10}" for i, r in enumerate(runs)}
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for run in runs:
            prev = cont.get(run.name)
            for key, style in ((metric, "-"), (f"val_{metric}", "--")):
                values = list(run.history.get(key) or [])
                if not values:
                    continue
                start = offsets[run.name]
                epochs = list(range(start + 1, start + len(values) + 1))
                if prev is not None and prev.history.get(key):
                    epochs, values = [start, *epochs], [prev.history[key][-1], *values]
                ax.plot(epochs, values, style, color=colors[run.name], marker="o", ms=3)
        for run in runs:
            if run.name in cont:
                ax.axvline(offsets[run.name] + 0.5, color=colors[run.name], ls=":", lw=1.2)
        ax.set_title(f"{metric.capitalize()} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    labels = display_names(runs)
    handles = [Line2D([], [], color=colors[r.name], marker="o", ms=3, label=labels[r.name]) for r in runs]
    handles += [Line2D([], [], color="0.3", ls="-", label="train"),
                Line2D([], [], color="0.3", ls="--", label="validation")]
    if cont:
        handles.append(Line2D([], [], color="0.3", ls=":", label="fine-tuning starts"))
    fig.legend(handles=handles, loc="outside lower center", ncol=min(4, len(handles)), fontsize="small",
               frameon=False)
    fig.suptitle(_names_title(runs), fontsize="large")
    return save_figure(fig, path)


def plot_accuracy_vs_time(runs, *, path: str | os.PathLike | None = None) -> Figure:
    """Validation accuracy against cumulative training time, transfer vs scratch.

    Each run's curve is its validation accuracy after each epoch, placed at the
    training seconds spent so far (:func:`~transferkit.reporting.timing.training_seconds`:
    feature caching plus an even share of the fit time per epoch, never the
    test evaluation); a fine-tuning run starts where its frozen run ended, so
    its last point is at its cumulative time. A star at the end of each curve
    marks the run's test accuracy. Transfer runs are solid, runs without a
    pretrained backbone dashed; the legend, right of the axes, names the runs.

    Args:
        runs: A :class:`~transferkit.runs.record.Run` or a list of them.
        path: Save the figure here when given.

    Returns:
        A Figure with one axes.
    """
    from matplotlib.lines import Line2D

    from transferkit.reporting.timing import cumulative_seconds, training_seconds
    from transferkit.runs.record import is_pretrained

    runs = _runs(runs)
    cont = continuations(runs)
    fig = Figure(figsize=(13, 3.7), layout="constrained")
    ax = fig.subplots()
    handles, labels = [], display_names(runs)
    for i, run in enumerate(runs):
        own = training_seconds(run) or 0.0
        end = cumulative_seconds(run, cont) or 0.0
        start = end - own
        fit = min(float((run.timings or {}).get("fit") or own), own)
        values = list(run.history.get("val_accuracy") or [])
        times = [end - fit + fit * (k + 1) / len(values) for k in range(len(values))]
        color, style = f"C{i % 10}", "-" if is_pretrained(run) else "--"
        prev = cont.get(run.name)
        if values and prev is not None and prev.history.get("val_accuracy"):
            times, values = [start, *times], [prev.history["val_accuracy"][-1], *values]
        if values:
            ax.plot(times, values, style, color=color, marker="o", ms=4)
        if run.evaluation is not None:  # at the curve's end: the model it scored
            ax.plot([end], [run.evaluation.accuracy], "*", color=color, ms=14, mec="white", mew=0.6)
        handles.append(Line2D([], [], color=color, ls=style, marker="o", ms=4, label=labels[run.name]))
    handles += [Line2D([], [], color="0.3", ls="-", label="pretrained backbone"),
                Line2D([], [], color="0.3", ls="--", label="from scratch"),
                Line2D([], [], color="0.3", ls="", marker="*", ms=12, label="test accuracy")]
    ax.set_xlabel("cumulative training time (s): fine-tuning starts after its frozen head")
    ax.set_ylabel("validation accuracy")
    ax.set_xlim(left=0)
    _readable_percent_axis(ax)
    ax.grid(alpha=0.3)
    # No suptitle: centred over axes and legend it ran into the legend; the legend names the runs.
    ax.set_title("Validation accuracy over cumulative training time; star: test accuracy",
                 loc="left")
    fig.legend(handles=handles, loc="outside right upper", frameon=False)
    return save_figure(fig, path)


def _readable_percent_axis(ax, span: float = 0.1) -> None:
    """Accuracy in percent over at least ``span``: flat curves would get ticks like 1e-8 + 0.333."""
    from matplotlib.ticker import PercentFormatter

    low, high = ax.get_ylim()
    if high - low < span:
        middle = (low + high) / 2
        low, high = max(middle - span / 2, 0.0), min(middle + span / 2, 1.0)
        ax.set_ylim(low, max(high, low + span))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))


def plot_confusion_matrix(
    evaluation,
    *,
    normalize: bool | str | None = None,
    name: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Confusion matrix with class names on both axes.

    Args:
        evaluation: An :class:`~transferkit.runs.evaluation.Evaluation`.
        normalize: ``None`` draws counts and row-normalised side by side; True
            only normalised; False only counts; ``"colour"`` one panel with
            the counts in the cells, coloured by their share of the true
            class (the report's: one figure per run, sized so that its
            numbers stay readable printed at a page's width).
        name: The model or run, named in the title.
        path: Save the figure here when given.

    Returns:
        A Figure with one or two image axes (and their colorbars).
    """
    cm = np.asarray(evaluation.confusion_matrix, dtype=np.int64)
    names = list(evaluation.class_names)
    label = f"{name}: " if name else ""
    tta = " (with mirror images, TTA)" if evaluation.tta else ""
    title = f"{label}confusion matrix, {evaluation.split} split, accuracy {evaluation.accuracy:.1%}{tta}"
    if normalize == "colour":
        # 0.55 in a cell and 11 pt numbers: 12 pt or more on screen at 110 dpi, about
        # 10 pt printed on A4 (the figure is then shrunk to the page's 7.5 in).
        side = max(4.0, 0.55 * len(names) + 2.2)
        fig = Figure(figsize=(side + 0.9, side), layout="constrained")
        _confusion_panel(fig.subplots(), cm, names, normalized=False, colour_rows=True)
        fig.suptitle(title, fontsize="large" if len(title) < 60 else "medium")
        return save_figure(fig, path)
    panels = [False, True] if normalize is None else [bool(normalize)]
    size = max(4.2, 0.5 * len(names) + 2)
    fig = Figure(figsize=(size * 1.2 * len(panels), size + 0.4), layout="constrained")
    for ax, norm in zip(np.atleast_1d(fig.subplots(1, len(panels))), panels):
        _confusion_panel(ax, cm, names, normalized=norm)
    fig.suptitle(title, fontsize="large")
    return save_figure(fig, path)


def _confusion_panel(ax, cm: np.ndarray, names: list[str], *, normalized: bool,
                     colour_rows: bool = False) -> None:
    """One confusion-matrix panel drawn by scikit-learn, styled like the other figures.

    ``colour_rows``: the cells show counts but are coloured by their share of
    the row, so a rare class's mistakes are as visible as a common one's.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(names)
    share = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)  # an empty row stays 0, not NaN
    shown = share if normalized or colour_rows else cm
    display = ConfusionMatrixDisplay(shown, display_labels=names).plot(
        ax=ax, cmap="Blues", colorbar=False, xticks_rotation=45,
        include_values=n <= 15 and not colour_rows,  # more cells than that are too small to read
        values_format=".2f" if normalized else "d",
        im_kw={"vmin": 0, "vmax": 1 if normalized or colour_rows else None},
        text_kw={"fontsize": "xx-small" if n > 10 else "x-small"},
    )
    if colour_rows and n <= 15:
        for (i, j), count in np.ndenumerate(cm):
            ax.text(j, i, f"{count:d}", ha="center", va="center", fontsize=11 if n <= 10 else 9,
                    color="white" if share[i, j] > 0.55 else "#1b1d23")
    ax.tick_params(labelsize="medium" if colour_rows else "small")
    for label in ax.get_xticklabels():  # the label's end under its column, not its middle
        label.set(ha="right", rotation_mode="anchor")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    if not colour_rows:
        ax.set_title("row-normalised (recall per class)" if normalized else "counts", fontsize="medium")
    bar = ax.figure.colorbar(display.im_, ax=ax, shrink=0.8, pad=0.02)
    if colour_rows:
        bar.set_label("share of the row (true class)")


def plot_per_class_metrics(
    evaluation, *, name: str | None = None, path: str | os.PathLike | None = None
) -> Figure:
    """Per-class precision, recall and F1 as grouped bars (legend below the axes).

    Args:
        evaluation: An :class:`~transferkit.runs.evaluation.Evaluation`.
        name: The model or run, named in the title.
        path: Save the figure here when given.

    Returns:
        A Figure with one axes.
    """
    names = evaluation.class_names
    x = np.arange(len(names))
    # 8.5 in for 10 classes: little shrunk on a printed page, yet the slanted names clear each other.
    fig = Figure(figsize=(max(6, 0.65 * len(names) + 2), 4.2), layout="constrained")
    ax = fig.subplots()
    for k, metric in enumerate(("precision", "recall", "f1")):
        values = [evaluation.per_class[n][metric] for n in names]
        ax.bar(x + (k - 1) * 0.27, values, width=0.27, label=metric)
    ax.set_xticks(x, names, rotation=45, ha="right", rotation_mode="anchor")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    label = f"{name}: " if name else ""
    ax.set_title(f"{label}per-class metrics ({evaluation.split} split, macro F1 {evaluation.f1:.2f})",
                 fontsize="medium")
    fig.legend(loc="outside lower center", ncol=3, frameon=False)  # beside the axes it met a long title
    ax.grid(axis="y", alpha=0.3)
    return save_figure(fig, path)


def most_confused_pairs(evaluation, top: int = 5) -> list[tuple[str, str, int]]:
    """The ``top`` (true, predicted, count) off-diagonal pairs of the confusion matrix."""
    cm = np.asarray(evaluation.confusion_matrix)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:top]
    names = evaluation.class_names
    pairs = [np.unravel_index(f, cm.shape) for f in flat]
    # off, not cm: with fewer mistakes than ``top`` the zeroed diagonal sorts in too.
    return [(names[i], names[j], int(cm[i, j])) for i, j in pairs if off[i, j] > 0]


def plot_model_summary(model, *, path: str | os.PathLike | None = None, max_rows: int = 40) -> Figure:
    """A readable architecture table: layer, type, output shape, parameters, trainable/frozen.

    Nested backbones are shown as one row with their trainable-layer count,
    counted as in run records (:func:`backbone_layer_counts`); frozen rows
    are greyed.

    Args:
        model: A Keras model.
        path: Save the figure here when given.
        max_rows: Rows shown before the table is cut (with a note).

    Returns:
        A Figure with one (table) axes.
    """
    import keras

    rows = []
    for layer in model.layers:
        params = int(sum(np.prod(w.shape) for w in layer.weights))
        trainable_params = int(sum(np.prod(w.shape) for w in layer.trainable_weights))
        if isinstance(layer, keras.Model):
            state = "{} of {} layers trainable".format(*backbone_layer_counts(layer))
        elif not params:
            state = "-"
        else:
            state = "trainable" if trainable_params else "frozen"
        try:
            shape = str(tuple(layer.output.shape))
        except (AttributeError, ValueError):
            shape = "?"
        rows.append([layer.name, type(layer).__name__, shape, f"{params:,}", state])
    cut = len(rows) > max_rows
    rows = rows[:max_rows] + ([["...", f"{len(model.layers) - max_rows} more", "", "", ""]] if cut else [])
    fig = Figure(figsize=(10, 0.3 * len(rows) + 1.0), layout="constrained")
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["layer", "type", "output shape", "params", "state"],
                     loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(5)))
    table.scale(1, 1.25)
    for (r, _), cell in table.get_celld().items():
        if r > 0 and r <= len(rows) and rows[r - 1][4] == "frozen":
            cell.set_facecolor("#eeeeee")
    counts = {
        "trainable": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "total": int(sum(np.prod(w.shape) for w in model.weights)),
    }
    ax.set_title(f"{model.name}: {counts['trainable']:,} trainable of {counts['total']:,} parameters")
    return save_figure(fig, path)


def backbone_layer_counts(backbone) -> tuple[int, int]:
    """``(trainable, total)`` layers of a backbone, counted as run records count them.

    ``total`` is every layer but the input; ``trainable`` those with weights
    that training updates. BatchNorm layers kept frozen during fine-tuning
    are not trainable, so ``unfreeze=20`` (the last 20 layers) usually makes
    fewer than 20 trainable.
    """
    from transferkit.models.freezing import backbone_layers

    layers = backbone_layers(backbone)
    if not backbone.trainable:
        return 0, len(layers)
    return sum(1 for x in layers if x.trainable and x.weights), len(layers)
