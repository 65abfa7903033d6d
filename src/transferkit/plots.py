"""Every figure transferkit draws. Each returns a matplotlib Figure and saves it when given a path.

Figures are drawn with the object-oriented API on the headless Agg canvas,
so no window ever opens and pyplot's global state is never touched.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from transferkit.errors import ConfigurationError


def _save(fig: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        from transferkit._atomic import atomic_write

        path = Path(path)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight", format=path.suffix.lstrip(".") or "png"))
    return fig


def _runs(runs) -> list:
    runs = list(runs) if isinstance(runs, (list, tuple)) else [runs]
    if not runs:
        raise ConfigurationError("Nothing to plot: no runs given.")
    return runs


def plot_learning_curves(runs, *, path: str | os.PathLike | None = None) -> Figure:
    """Accuracy and loss per epoch, train (solid) vs validation (dashed), runs overlaid.

    Args:
        runs: A :class:`~transferkit.training.Run` or a list of them.
        path: Save the figure here (format from the suffix) when given.

    Returns:
        A Figure with two axes: accuracy and loss.

    Example:
        >>> fig = plot_learning_curves([transfer_run, baseline_run], path="curves.png")  # doctest: +SKIP
    """
    runs = _runs(runs)
    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2)
    for ax, metric in zip(axes, ("accuracy", "loss")):
        for i, run in enumerate(runs):
            color = f"C{i % 10}"
            for key, style, label in ((metric, "-", "train"), (f"val_{metric}", "--", "val")):
                values = run.history.get(key)
                if values:
                    epochs = np.arange(1, len(values) + 1)
                    ax.plot(epochs, values, style, color=color, marker="o", ms=3,
                            label=f"{run.name} ({label})")
        ax.set_title(f"{metric.capitalize()} per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle("Learning curves")
    return _save(fig, path)


def plot_confusion_matrix(
    evaluation, *, normalize: bool | None = None, path: str | os.PathLike | None = None
) -> Figure:
    """Confusion matrix with class names on both axes: counts and row-normalised side by side.

    Args:
        evaluation: An :class:`~transferkit.evaluation.Evaluation`.
        normalize: ``None`` draws both panels; True only normalised; False only counts.
        path: Save the figure here when given.

    Returns:
        A Figure with one or two axes.
    """
    cm = np.asarray(evaluation.confusion_matrix, dtype=float)
    names = evaluation.class_names
    panels = [False, True] if normalize is None else [bool(normalize)]
    n = len(names)
    size = max(4.5, 0.55 * n + 2)
    fig = Figure(figsize=(size * len(panels), size))
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, norm in zip(axes, panels):
        shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if norm else cm
        im = ax.imshow(shown, cmap="Blues", vmin=0, vmax=1 if norm else None)
        ax.set_xticks(range(n), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(n), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title("Confusion matrix (normalised)" if norm else "Confusion matrix (counts)")
        if n <= 15:
            threshold = shown.max() / 2 if shown.size else 0
            for i in range(n):
                for j in range(n):
                    text = f"{shown[i, j]:.2f}" if norm else f"{int(shown[i, j])}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=7,
                            color="white" if shown[i, j] > threshold else "black")
        fig.colorbar(im, ax=ax, fraction=0.046)
    fig.suptitle(f"{evaluation.split} split, accuracy {evaluation.accuracy:.3f}")
    return _save(fig, path)


def plot_per_class_metrics(evaluation, *, path: str | os.PathLike | None = None) -> Figure:
    """Per-class precision, recall and F1 as grouped bars.

    Args:
        evaluation: An :class:`~transferkit.evaluation.Evaluation`.
        path: Save the figure here when given.

    Returns:
        A Figure with one axes.
    """
    names = evaluation.class_names
    x = np.arange(len(names))
    fig = Figure(figsize=(max(6, 0.8 * len(names) + 2), 4))
    ax = fig.subplots()
    for k, metric in enumerate(("precision", "recall", "f1")):
        values = [evaluation.per_class[n][metric] for n in names]
        ax.bar(x + (k - 1) * 0.27, values, width=0.27, label=metric)
    ax.set_xticks(x, names, rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(f"Per-class metrics ({evaluation.split}; macro F1 {evaluation.f1:.3f})")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def plot_feature_maps(
    image: np.ndarray,
    activations: np.ndarray,
    *,
    layer: str = "",
    top_k: int = 16,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The input image and the ``top_k`` most active channels of one layer for it.

    Args:
        image: One raw image ``(h, w, c)``.
        activations: That image's activations ``(h', w', channels)`` (e.g. one
            entry of :func:`~transferkit.features.extract_feature_maps`).
        layer: Layer name for the title.
        top_k: Channels shown, ranked by mean activation.
        path: Save the figure here when given.

    Returns:
        A Figure with ``1 + top_k`` image axes.
    """
    acts = np.asarray(activations)
    if acts.ndim != 3:
        raise ConfigurationError(f"activations must be (h, w, channels) for one image, got {acts.shape}.")
    k = min(top_k, acts.shape[-1])
    order = np.argsort(-acts.mean(axis=(0, 1)))[:k]
    cols = int(np.ceil(np.sqrt(k + 1)))
    rows = int(np.ceil((k + 1) / cols))
    fig = Figure(figsize=(1.8 * cols, 1.9 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    axes[0].imshow(np.asarray(image).squeeze(), cmap="gray" if image.shape[-1] == 1 else None)
    axes[0].set_title("input", fontsize=8)
    for ax, ch in zip(axes[1:], order):
        ax.imshow(acts[..., ch], cmap="viridis")
        ax.set_title(f"ch {ch}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    for ax in axes[k + 1:]:
        ax.set_visible(False)
    fig.suptitle(f"Feature maps of {layer} (top {k} channels by activation)")
    return _save(fig, path)


def plot_predictions(
    images: np.ndarray,
    evaluation,
    *,
    indices: Sequence[int] | None = None,
    count: int = 16,
    mode: str = "sample",
    path: str | os.PathLike | None = None,
) -> Figure:
    """A grid of images with true vs predicted labels; wrong predictions in red.

    Args:
        images: The evaluated split's images, in evaluation order.
        evaluation: An :class:`~transferkit.evaluation.Evaluation` with predictions.
        indices: Which images to show; default chosen by ``mode``.
        count: Number of images when ``indices`` is not given.
        mode: ``"sample"`` (evenly spaced), ``"errors"`` (misclassified, most
            confident first) or ``"loss"`` (highest loss first).
        path: Save the figure here when given.

    Returns:
        A Figure with one axes per image.
    """
    y_true = np.asarray(evaluation.y_true)
    y_pred = np.asarray(evaluation.y_pred)
    probs = np.asarray(evaluation.probabilities)
    if len(y_true) != len(images) or probs.shape[0] != len(images):
        raise ConfigurationError(
            "images and evaluation differ in length; pass the evaluated split's images "
            "and an evaluation that kept its predictions."
        )
    if indices is None:
        indices = _pick(y_true, y_pred, probs, count, mode)
    indices = list(indices)
    if not indices:
        indices = list(range(min(count, len(images))))
    cols = min(8, len(indices))
    rows = int(np.ceil(len(indices) / cols))
    fig = Figure(figsize=(1.7 * cols, 2.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    names = evaluation.class_names
    for ax, i in zip(axes, indices):
        ax.imshow(images[i].squeeze(), cmap="gray" if images.shape[-1] == 1 else None)
        wrong = y_true[i] != y_pred[i]
        ax.set_title(
            f"true: {names[y_true[i]]}\npred: {names[y_pred[i]]} {probs[i, y_pred[i]]:.2f}",
            fontsize=7, color="red" if wrong else "green",
        )
    for ax in axes:
        ax.axis("off")
    for ax in axes[len(indices):]:
        ax.set_visible(False)
    titles = {"sample": "Sample predictions", "errors": "Most confident mistakes",
              "loss": "Highest-loss examples"}
    fig.suptitle(f"{titles.get(mode, 'Predictions')} (red = wrong)")
    return _save(fig, path)


def _pick(y_true, y_pred, probs, count, mode) -> list[int]:
    if mode == "sample":
        return np.linspace(0, len(y_true) - 1, min(count, len(y_true))).astype(int).tolist()
    if mode == "errors":
        wrong = np.flatnonzero(y_true != y_pred)
        conf = probs[wrong, y_pred[wrong]]
        return wrong[np.argsort(-conf)][:count].tolist()
    if mode == "loss":
        loss = -np.log(np.clip(probs[np.arange(len(y_true)), y_true], 1e-7, 1))
        return np.argsort(-loss)[:count].tolist()
    raise ConfigurationError(f"Unknown mode {mode!r}; use 'sample', 'errors' or 'loss'.")


def most_confused_pairs(evaluation, top: int = 5) -> list[tuple[str, str, int]]:
    """The ``top`` (true, predicted, count) off-diagonal pairs of the confusion matrix."""
    cm = np.asarray(evaluation.confusion_matrix)
    off = cm.copy()
    np.fill_diagonal(off, 0)
    flat = np.argsort(-off, axis=None)[:top]
    names = evaluation.class_names
    pairs = [np.unravel_index(f, cm.shape) for f in flat]
    return [(names[i], names[j], int(cm[i, j])) for i, j in pairs if cm[i, j] > 0]


def plot_model_summary(model, *, path: str | os.PathLike | None = None, max_rows: int = 40) -> Figure:
    """A readable architecture table: layer, type, output shape, parameters, trainable/frozen.

    Nested backbones are shown as one row (with their trainable-layer count);
    frozen rows are greyed.

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
            inner = [x for x in layer.layers if x.weights]
            n_train = sum(1 for x in inner if x.trainable_weights)
            state = f"{n_train}/{len(inner)} layers trainable"
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
    fig = Figure(figsize=(10, 0.32 * len(rows) + 1.2))
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(cellText=rows, colLabels=["layer", "type", "output shape", "params", "state"],
                     loc="upper center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.25)
    for (r, _), cell in table.get_celld().items():
        if r > 0 and r <= len(rows) and rows[r - 1][4] == "frozen":
            cell.set_facecolor("#eeeeee")
    counts = {
        "trainable": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
        "total": int(sum(np.prod(w.shape) for w in model.weights)),
    }
    ax.set_title(f"{model.name}: {counts['trainable']:,} trainable of {counts['total']:,} parameters")
    return _save(fig, path)


def plot_model_graph(model, path: str | os.PathLike) -> Path | None:
    """Draw ``keras.utils.plot_model`` output to ``path`` when pydot and graphviz are installed.

    Returns:
        The path written, or None when pydot/graphviz are missing.
    """
    import keras

    try:
        keras.utils.plot_model(model, to_file=str(path), show_shapes=True, expand_nested=False)
    except (ImportError, OSError):
        return None
    return Path(path) if Path(path).exists() else None
