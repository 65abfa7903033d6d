"""Figures made of images: feature maps by depth, prediction and image grids, Grad-CAM overlays.

:func:`save_figure` is how every reporting figure is written. Figures use
matplotlib's constrained layout, so titles, labels and panels never overlap.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from transferkit.errors import ConfigurationError


def save_figure(fig: Figure, path: str | os.PathLike | None) -> Figure:
    """Save ``fig`` to ``path`` when one is given (atomically; format from the suffix, else PNG).

    Every reporting figure is saved through here, so all share one resolution
    (110 dpi) and a tight bounding box.

    Returns:
        ``fig``, so a plotting function can end with ``return save_figure(fig, path)``.
    """
    if path is not None:
        from transferkit._atomic import atomic_write

        path = Path(path)
        atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, bbox_inches="tight",
                                                   format=path.suffix.lstrip(".") or "png"))
    return fig


def _show_image(ax, image: np.ndarray) -> None:
    image = np.asarray(image)
    ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None)


def _bare(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(False)


def plot_feature_maps(
    image: np.ndarray,
    activations: np.ndarray,
    *,
    layer: str = "",
    top_k: int = 16,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The input image and the ``top_k`` most active channels of one layer for it.

    All channels share one colour scale (0 to the largest activation shown),
    so brighter means more active across the whole grid.

    Args:
        image: One raw image ``(h, w, c)``.
        activations: That image's activations ``(h', w', channels)`` (e.g. one
            entry of :func:`~transferkit.models.features.extract_feature_maps`).
        layer: Model and layer name for the title.
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
    fig = Figure(figsize=(1.9 * cols, 2.0 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    _show_image(axes[0], image)
    axes[0].set_title("input", fontsize="small")
    vmax = float(acts[..., order].max()) if k else 1.0
    for ax, ch in zip(axes[1:], order):
        ax.imshow(acts[..., ch], cmap="viridis", vmin=min(0.0, float(acts.min())), vmax=vmax,
                  interpolation="nearest")
        ax.set_title(f"ch {ch}", fontsize="small")
    for ax in axes:
        ax.axis("off")
    for ax in axes[k + 1:]:
        ax.set_visible(False)
    h, w = acts.shape[:2]
    fig.suptitle(f"Feature maps of {layer} ({h}x{w}, top {k} channels)", fontsize="medium")
    return save_figure(fig, path)


def plot_feature_maps_by_depth(
    image: np.ndarray,
    maps: Mapping[str, np.ndarray],
    *,
    model_name: str = "",
    channels: int = 4,
    path: str | os.PathLike | None = None,
) -> Figure:
    """The input image beside a few layers at increasing depth, one row per layer.

    Each row shows the ``channels`` most active channels of one layer for the
    image, with one colour scale per row (0 to that layer's largest value shown),
    labelled with the layer's name and resolution.

    Args:
        image: One raw image ``(h, w, c)``.
        maps: ``{layer name: activations (h', w', channels)}`` for that image,
            shallow to deep (e.g. :func:`~transferkit.models.features.extract_feature_maps`
            of :func:`~transferkit.models.features.default_feature_layers`, first image each).
        model_name: The model, named in the title.
        channels: Channels shown per layer.
        path: Save the figure here when given.

    Returns:
        A Figure: the input on the left, ``len(maps)`` rows of ``channels`` maps.
    """
    maps = {k: np.asarray(v) for k, v in maps.items()}
    if not maps or any(v.ndim != 3 for v in maps.values()):
        raise ConfigurationError("maps must be {layer: (h, w, channels)} for one image, at least one layer.")
    rows = len(maps)
    cols = min(channels, min(v.shape[-1] for v in maps.values()))
    mosaic = [["input", *(f"{r}-{c}" for c in range(cols))] for r in range(rows)]
    fig = Figure(figsize=(1.75 * (cols + 1.6), 1.75 * rows + 0.5), layout="constrained")
    axd = fig.subplot_mosaic(mosaic, width_ratios=[1.6] + [1] * cols)
    _show_image(axd["input"], image)
    h, w = np.asarray(image).shape[:2]
    axd["input"].set_title(f"input ({h}x{w})", fontsize="medium")
    _bare(axd["input"])
    for r, (layer, acts) in enumerate(maps.items()):
        order = np.argsort(-acts.mean(axis=(0, 1)))[:cols]
        vmax = float(acts[..., order].max()) or 1.0
        for c, ch in enumerate(order):
            ax = axd[f"{r}-{c}"]
            ax.imshow(acts[..., ch], cmap="magma", vmin=0, vmax=vmax, interpolation="nearest")
            _bare(ax)
            ax.set_xlabel(f"ch {ch}", fontsize="x-small", labelpad=1)
        axd[f"{r}-0"].set_ylabel(f"{layer}\n{acts.shape[0]}x{acts.shape[1]}", fontsize="small",
                                 rotation=0, ha="right", va="center")
    label = f"{model_name}: " if model_name else ""
    fig.suptitle(f"{label}what layers at increasing depth respond to", fontsize="medium")
    return save_figure(fig, path)


def plot_predictions(
    images: np.ndarray,
    evaluation,
    *,
    indices: Sequence[int] | None = None,
    count: int = 16,
    mode: str = "sample",
    name: str | None = None,
    path: str | os.PathLike | None = None,
) -> Figure:
    """A grid of images with true vs predicted labels; wrong predictions in red.

    Args:
        images: The evaluated split's images, in evaluation order.
        evaluation: An :class:`~transferkit.runs.evaluation.Evaluation` with predictions.
        indices: Which images to show; default chosen by ``mode``.
        count: Number of images when ``indices`` is not given.
        mode: ``"sample"`` (evenly spaced), ``"errors"`` (misclassified, most
            confident first) or ``"loss"`` (highest loss first).
        name: The model or run, named in the title.
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
    fig = Figure(figsize=(1.75 * cols, 2.1 * rows + 0.4), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    names = evaluation.class_names
    for ax, i in zip(axes, indices):
        _show_image(ax, images[i])
        wrong = y_true[i] != y_pred[i]
        ax.set_title(
            f"true: {names[y_true[i]]}\npred: {names[y_pred[i]]} {probs[i, y_pred[i]]:.2f}",
            fontsize="x-small", color="red" if wrong else "green",
        )
    for ax in axes:
        ax.axis("off")
    for ax in axes[len(indices):]:
        ax.set_visible(False)
    titles = {"sample": "Sample predictions", "errors": "Most confident mistakes",
              "loss": "Highest-loss examples"}
    label = f"{name}: " if name else ""
    fig.suptitle(f"{label}{titles.get(mode, 'Predictions')} (red = wrong)", fontsize="medium")
    return save_figure(fig, path)


def plot_image_grid(
    images: Sequence[np.ndarray],
    *,
    columns: int,
    titles: Sequence[str] | None = None,
    title: str | None = None,
    cell: float = 1.25,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Images in a grid, row by row, each under its own title ("" for none).

    The deck's per-class sample grid (a column per class, its name on top) and
    its examples of the most frequent mistake use it.

    Args:
        images: The images (uint8 or 0-1 floats, H x W x C).
        columns: Images per row.
        titles: One per image; empty strings leave an image untitled.
        title: The figure's title.
        cell: Inches per image.
        path: Save the figure here when given.

    Returns:
        A Figure with one axes per image.
    """
    images = list(images)
    if not images:
        raise ConfigurationError("No images to show.")
    columns = max(1, min(columns, len(images)))
    rows = -(-len(images) // columns)
    fig = Figure(figsize=(cell * columns, cell * rows + (0.35 if title else 0)), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False).ravel()
    for k, ax in enumerate(axes):
        ax.axis("off")
        if k < len(images):
            _show_image(ax, images[k])
            if titles is not None and titles[k]:
                ax.set_title(titles[k], fontsize="medium")
    if title:
        fig.suptitle(title, fontsize="medium")
    return save_figure(fig, path)


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


def plot_grad_cam(
    images: np.ndarray,
    maps: np.ndarray,
    *,
    predicted: Sequence[int],
    true: Sequence[int] | None = None,
    class_names: Sequence[str] | None = None,
    confidence: Sequence[float] | None = None,
    titles: Sequence[str] | None = None,
    name: str | None = None,
    alpha: float = 0.5,
    path: str | os.PathLike | None = None,
) -> Figure:
    """Each image above its Grad-CAM overlay, titled with the true and predicted class.

    A title says ``true: cat`` / ``pred: dog 0.83`` and, where the true class
    is known, ``right`` (green) or ``WRONG`` (red). The overlay is the image in
    grey under the map in a heat colour scale (bright = strongest evidence for
    the predicted class, see :func:`~transferkit.models.gradcam.grad_cam`).

    Args:
        images: Raw images ``(n, h, w, c)``.
        maps: Their Grad-CAM maps ``(n, h, w)`` in ``[0, 1]``.
        predicted: Predicted class index of each image (the class each map explains).
        true: True class indices, when known.
        class_names: Names of the classes (default: the indices).
        confidence: Probability of each predicted class, shown after its name.
        titles: A first title line per image (e.g. its file name).
        name: The model or run, named in the figure title.
        alpha: Opacity of the map over the image.
        path: Save the figure here when given.

    Returns:
        A Figure with two axes per image (image, overlay), 8 images per row at most.

    Example:
        >>> fig = plot_grad_cam(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8)),
        ...                     predicted=[0, 1], true=[0, 0], class_names=["cat", "dog"])
        >>> len(fig.axes)
        4
    """
    images, maps = np.asarray(images), np.asarray(maps)
    if maps.ndim != 3 or len(maps) != len(images) or maps.shape[1:] != images.shape[1:3]:
        raise ConfigurationError(f"maps must be (n, h, w) for images {images.shape}, got {maps.shape}.")
    cols = min(8, len(images)) or 1
    rows = int(np.ceil(len(images) / cols))
    fig = Figure(figsize=(1.9 * cols, 4.1 * rows + 0.4), layout="constrained")
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    for i in range(rows * cols):
        top, bottom = axes[2 * (i // cols), i % cols], axes[2 * (i // cols) + 1, i % cols]
        if i >= len(images):
            top.set_visible(False)
            bottom.set_visible(False)
            continue
        _show_image(top, images[i])
        bottom.imshow(_grey(images[i]), cmap="gray", vmin=0, vmax=255)
        bottom.imshow(maps[i], cmap="inferno", vmin=0, vmax=1, alpha=alpha)
        text, colour = _cam_title(i, predicted, true, class_names, confidence, titles)
        top.set_title(text, fontsize="x-small", color=colour)
        _bare(top)
        _bare(bottom)
    label = f"{name}: " if name else ""
    fig.suptitle(f"{label}Grad-CAM, where the model found its predicted class "
                 "(bright = strongest evidence)", fontsize="medium")
    return save_figure(fig, path)


def _grey(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, np.float32)
    return image[..., 0] if image.shape[-1] == 1 else image @ np.array([0.299, 0.587, 0.114])


TITLE_CHARS = 20
"""A Grad-CAM panel's first title line (a file name) is cut to this many characters."""


def _middle_cut(text: str, width: int = TITLE_CHARS) -> str:
    """``text`` cut in the middle to ``width`` characters, keeping its start and its extension.

    Example:
        >>> _middle_cut("daisy-9595857626_979c45e5bf_n.jpg")
        'daisy-9595…5bf_n.jpg'
    """
    if len(text) <= width:
        return text
    tail = (width - 1) // 2
    return text[:width - 1 - tail] + "…" + text[-tail:]


def _cam_title(i, predicted, true, names, confidence, titles) -> tuple[str, str]:
    """One panel's title and its colour: green right, red wrong, black unknown."""
    def label(k):
        return str(names[k]) if names is not None else str(k)

    pred = f"pred: {label(predicted[i])}"
    sure = f"{confidence[i]:.2f}" if confidence is not None else ""
    lines = [_middle_cut(str(titles[i]))] if titles is not None else []
    if true is None:
        return "\n".join([*lines, f"{pred} {sure}".strip()]), "black"
    right = int(true[i]) == int(predicted[i])
    # Verdict and confidence on a line of their own: one long line ran into the next panel's.
    lines += [f"true: {label(true[i])}", pred, f"{sure} {'right' if right else 'WRONG'}".strip()]
    return "\n".join(lines), "green" if right else "red"
