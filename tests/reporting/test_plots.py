import numpy as np
import pytest

from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_transfer_model
from transferkit.reporting.image_plots import (
    plot_feature_maps,
    plot_feature_maps_by_depth,
    plot_grad_cam,
    plot_predictions,
)
from transferkit.reporting.plots import (
    continuations,
    most_confused_pairs,
    plot_accuracy_vs_time,
    plot_confusion_matrix,
    plot_learning_curves,
    plot_model_summary,
    plot_per_class_metrics,
)
from transferkit.runs.evaluation import Evaluation, evaluate_predictions
from transferkit.runs.record import Run


@pytest.fixture
def evaluation():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 30)
    p = rng.random((30, 3))
    p[np.arange(20), y[:20]] += 2
    return evaluate_predictions(y, p / p.sum(1, keepdims=True), ["cat", "dog", "frog"])


def _run(name, config=None, epochs=2, evaluation=None):
    values = np.linspace(0.4, 0.6, epochs).tolist()
    return Run(name, config or {}, {"accuracy": values, "val_accuracy": values, "loss": values[::-1],
                                    "val_loss": values[::-1]}, evaluation,
               {"fit": 3.0 * epochs, "total": 3.0 * epochs + 1})


def _pair(evaluation=None):
    frozen = _run("mobilenet_v2_frozen", {"model": "m", "backbone": {"name": "mobilenet_v2", "frozen": True}},
                  3, evaluation)
    tuned = _run("mobilenet_v2_finetuned", {"model": "m", "backbone": {"name": "mobilenet_v2", "frozen": False}},
                 1, evaluation)
    scratch = _run("baseline_cnn_scratch", {"model": "b", "backbone": {"name": "features", "frozen": False}},
                   4, evaluation)
    return [frozen, tuned, scratch]


def text_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap, measured with matplotlib's own renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ticks, shown = set(), []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            lo, hi = sorted(axis.get_view_interval())
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    ticks.add(id(label))
                    if (ax.get_visible() and label.get_visible() and label.get_text()
                            and lo - 1e-9 <= tick.get_loc() <= hi + 1e-9):
                        shown.append(label)
    for text in fig.findobj(Text):
        if id(text) in ticks or not text.get_visible() or not text.get_text().strip():
            continue
        if text.axes is not None and not text.axes.get_visible():
            continue
        shown.append(text)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in shown]
    return [(a, b) for i, (a, ba) in enumerate(boxes) for b, bb in boxes[i + 1:]
            if min(ba.x1, bb.x1) - max(ba.x0, bb.x0) > 0.5 and min(ba.y1, bb.y1) - max(ba.y0, bb.y0) > 0.5]


@pytest.fixture
def evaluation10():
    rng = np.random.default_rng(1)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    y = rng.integers(0, 10, 200)
    p = rng.random((200, 10))
    p[np.arange(150), y[:150]] += 3
    return evaluate_predictions(y, p / p.sum(1, keepdims=True), names)


def test_no_text_overlaps_in_any_figure(evaluation10):
    """Every figure function, with realistic names: no two drawn texts overlap."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (200, 32, 32, 3)).astype(np.uint8)
    maps = {"expanded_conv_depthwise_relu": rng.random((48, 48, 32)),
            "block_3_expand_relu": rng.random((24, 24, 96)), "block_6_expand_relu": rng.random((12, 12, 192))}
    model = build_transfer_model("mobilenet_v2", 10, weights=None)
    figures = {
        "learning curves": plot_learning_curves(_pair()),
        "accuracy vs time": plot_accuracy_vs_time(_pair(evaluation10)),
        "confusion": plot_confusion_matrix(evaluation10, name="mobilenet_v2_finetuned"),
        "per class": plot_per_class_metrics(evaluation10, name="mobilenet_v2_finetuned"),
        "feature maps": plot_feature_maps(images[0], maps["block_6_expand_relu"], layer="m: block_6"),
        "by depth": plot_feature_maps_by_depth(images[0], maps, model_name="mobilenet_v2_frozen"),
        "predictions": plot_predictions(images, evaluation10, count=16, name="m"),
        "mistakes": plot_predictions(images, evaluation10, mode="errors", count=8, name="m"),
        "summary": plot_model_summary(model),
    }
    for name, fig in figures.items():
        assert text_overlaps(fig) == [], name


def test_overlap_check_finds_overlaps():
    from matplotlib.figure import Figure

    fig = Figure()
    ax = fig.subplots()
    ax.text(0.5, 0.5, "one label")
    ax.text(0.52, 0.5, "another label")
    assert len(text_overlaps(fig)) == 1


def test_fine_tuning_continues_the_frozen_curve():
    runs = _pair()
    assert {k: v.name for k, v in continuations(runs).items()} == {"mobilenet_v2_finetuned": "mobilenet_v2_frozen"}
    acc = plot_learning_curves(runs).axes[0]
    tuned = acc.lines[2]  # frozen train, frozen val, then the fine-tuning train curve
    assert list(tuned.get_xdata()) == [3, 4]  # joined to epoch 3, its own epoch is 4
    assert all(float(t).is_integer() for t in acc.get_xticks())
    assert any(list(line.get_xdata()) == [3.5, 3.5] for line in acc.lines)  # boundary marked
    # Title and legend name runs as people read them, not by their identifiers.
    assert acc.figure.get_suptitle() == ("MobileNetV2, frozen head vs MobileNetV2, fine-tuned "
                                         "vs CNN from scratch")
    legend = [t.get_text() for t in acc.figure.legends[0].get_texts()]
    assert legend[:3] == ["MobileNetV2, frozen head", "MobileNetV2, fine-tuned", "CNN from scratch"]


def test_learning_curves(tmp_path):
    fig = plot_learning_curves([_run("a"), _run("b")], path=tmp_path / "lc.png")
    acc, loss = fig.axes
    assert acc.get_title() == "Accuracy per epoch" and loss.get_ylabel() == "loss"
    assert len(acc.lines) == 4 and acc.get_xlabel() == "epoch"
    assert fig.legends and not acc.get_legend()  # beside the data, not over it
    assert (tmp_path / "lc.png").stat().st_size > 1000
    with pytest.raises(ConfigurationError):
        plot_learning_curves([])


def test_confusion_matrix(evaluation, tmp_path):
    fig = plot_confusion_matrix(evaluation, path=tmp_path / "cm.svg")
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 2
    assert [t.get_text() for t in images[0].get_xticklabels()] == ["cat", "dog", "frog"]
    assert "normalised" in images[1].get_title() and images[0].get_ylabel() == "true"
    assert "mine" in plot_confusion_matrix(evaluation, name="mine").get_suptitle()
    assert "TTA" not in plot_confusion_matrix(evaluation).get_suptitle()
    mirrored = Evaluation.from_dict({**evaluation.to_dict(), "tta": True})
    assert "mirror images, TTA" in plot_confusion_matrix(mirrored).get_suptitle()
    assert (tmp_path / "cm.svg").read_text().startswith("<?xml")
    assert len([a for a in plot_confusion_matrix(evaluation, normalize=True).axes if a.images]) == 1


def test_per_class_bars(evaluation):
    ax = plot_per_class_metrics(evaluation).axes[0]
    assert len(ax.patches) == 9 and "macro F1" in ax.get_title()
    assert "net" in plot_per_class_metrics(evaluation, name="net").axes[0].get_title()


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


def test_grad_cam_overlays_say_true_vs_predicted_and_right_or_wrong(tmp_path):
    rng = np.random.default_rng(0)
    images, maps = rng.integers(0, 256, (10, 12, 16, 3)).astype(np.uint8), rng.random((10, 12, 16))
    true, pred = [0, 1] * 5, [0] * 10
    fig = plot_grad_cam(images, maps, predicted=pred, true=true, class_names=["cat", "dog"],
                        confidence=np.full(10, 0.75), name="net", path=tmp_path / "cam.png")
    shown = [ax for ax in fig.axes if ax.get_visible()]
    assert len(shown) == 20 and len(fig.axes) == 2 * 2 * 8  # rows of 8: image above overlay
    titled = [ax for ax in shown if ax.get_title()]
    assert [ax.get_title() for ax in titled[:2]] == ["true: cat\npred: cat\n0.75 right",
                                                     "true: dog\npred: cat\n0.75 WRONG"]
    assert [ax.title.get_color() for ax in titled[:2]] == ["green", "red"]
    overlay = [ax for ax in shown if len(ax.images) == 2][0]  # grey image under the map
    assert overlay.images[1].get_clim() == (0, 1) and "net: Grad-CAM" in fig.get_suptitle()
    assert text_overlaps(fig) == [] and (tmp_path / "cam.png").stat().st_size > 0
    alone = plot_grad_cam(images[:1], maps[:1], predicted=[1], titles=["x.png"])
    assert alone.axes[0].get_title() == "x.png\npred: 1" and alone.axes[0].title.get_color() == "black"
    with pytest.raises(ConfigurationError, match="maps must be"):
        plot_grad_cam(images, maps[:, :8], predicted=pred)
    # Photo file names as `transferkit explain` titles them ran into each other.
    names = [f"daisy-{9595857626 + k}_979c45e5bf_n.jpg" for k in range(3)]
    named = plot_grad_cam(images[:3], maps[:3], predicted=[0] * 3, titles=names)
    assert text_overlaps(named) == []
    assert named.axes[0].get_title().startswith("daisy-") and ".jpg\npred" in named.axes[0].get_title()


def test_feature_maps_by_depth_rows_share_a_scale():
    rng = np.random.default_rng(0)
    maps = {"early": rng.random((24, 24, 8)), "late": 3 * rng.random((6, 6, 16))}
    fig = plot_feature_maps_by_depth(np.zeros((32, 32, 3), np.uint8), maps, model_name="net", channels=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(shown) == 1 + 2 * 3 and "net" in fig.get_suptitle()
    late = [ax.images[0].get_clim() for ax in shown if ax.images[0].get_array().shape == (6, 6)]
    assert len(late) == 3 and len(set(late)) == 1
    with pytest.raises(ConfigurationError):
        plot_feature_maps_by_depth(np.zeros((4, 4, 3)), {})


def test_model_summary_figure(tmp_path):
    model = build_transfer_model("mobilenet_v2", 3, weights=None)
    fig = plot_model_summary(model, path=tmp_path / "arch.png")
    assert f"{1280 * 128 + 128 + 128 * 3 + 3:,} trainable" in fig.axes[0].get_title()
    assert (tmp_path / "arch.png").stat().st_size > 0
