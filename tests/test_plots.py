import numpy as np
import pytest

from transferkit.errors import ConfigurationError
from transferkit.evaluation import evaluate_predictions
from transferkit.models import build_transfer_model
from transferkit.plots import (
    most_confused_pairs,
    plot_confusion_matrix,
    plot_feature_maps,
    plot_learning_curves,
    plot_model_summary,
    plot_per_class_metrics,
    plot_predictions,
)
from transferkit.training import Run


@pytest.fixture
def evaluation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    p = rng.random((30, 3))
    p[np.arange(20), y[:20]] += 2
    return evaluate_predictions(y, p / p.sum(1, keepdims=True), ["cat", "dog", "frog"])


def _run(name):
    return Run(name, {}, {"accuracy": [0.4, 0.6], "val_accuracy": [0.5, 0.55], "loss": [1.2, 0.9],
                          "val_loss": [1.1, 1.0]}, None, {})


def test_learning_curves(tmp_path):
    fig = plot_learning_curves([_run("a"), _run("b")], path=tmp_path / "lc.png")
    acc, loss = fig.axes
    assert acc.get_title() == "Accuracy per epoch" and loss.get_ylabel() == "loss"
    assert len(acc.lines) == 4 and acc.get_xlabel() == "epoch"
    assert (tmp_path / "lc.png").stat().st_size > 1000
    with pytest.raises(ConfigurationError):
        plot_learning_curves([])


def test_confusion_matrix(evaluation, tmp_path):
    fig = plot_confusion_matrix(evaluation, path=tmp_path / "cm.svg")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2
    assert [t.get_text() for t in images[0].get_xticklabels()] == ["cat", "dog", "frog"]
    assert "normalised" in images[1].get_title() and images[0].get_ylabel() == "true"
    assert (tmp_path / "cm.svg").read_text().startswith("<?xml")
    assert len([a for a in plot_confusion_matrix(evaluation, normalize=True).axes if a.images]) == 1


def test_per_class_bars(evaluation):
    ax = plot_per_class_metrics(evaluation).axes[0]
    assert len(ax.patches) == 9 and "macro F1" in ax.get_title()


def test_feature_map_grid():
    acts = np.random.default_rng(0).random((6, 6, 20))
    acts[..., 7] += 5
    fig = plot_feature_maps(np.zeros((16, 16, 3), np.uint8), acts, layer="conv", top_k=8)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(visible) == 9 and visible[1].get_title() == "ch 7"  # most active first
    with pytest.raises(ConfigurationError):
        plot_feature_maps(np.zeros((4, 4, 3)), acts[None])


def test_prediction_grids(evaluation):
    images = np.zeros((30, 8, 8, 3), np.uint8)
    fig = plot_predictions(images, evaluation, count=6)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert len(titles) == 6 and all(t.startswith("true:") for t in titles)
    errors = plot_predictions(images, evaluation, mode="errors", count=4)
    colors = [ax.title.get_color() for ax in errors.axes if ax.get_visible()]
    assert colors and all(c == "red" for c in colors)
    with pytest.raises(ConfigurationError):
        plot_predictions(images[:3], evaluation)
    pairs = most_confused_pairs(evaluation)
    assert all(t != p for t, p, _ in pairs) and pairs == sorted(pairs, key=lambda x: -x[2])


def test_model_summary_figure(tmp_path):
    model = build_transfer_model("mobilenet_v2", 3, weights=None)
    fig = plot_model_summary(model, path=tmp_path / "arch.png")
    assert f"{1280 * 128 + 128 + 128 * 3 + 3:,} trainable" in fig.axes[0].get_title()
    assert (tmp_path / "arch.png").stat().st_size > 0
