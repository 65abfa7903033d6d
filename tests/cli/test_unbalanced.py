"""``transferkit train`` on unbalanced folders: the warning, ``--class-weight``, its records."""

import json
import re

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.cli._checks import parse_class_weight
from transferkit.errors import ConfigurationError
from transferkit.models.builders import build_transfer_model


@pytest.fixture(scope="session")
def unbalanced(tmp_path_factory):
    """A flat tree: 40 red photos of "common", 8 blue of "rare" (5x fewer)."""
    from PIL import Image

    root = tmp_path_factory.mktemp("unbalanced") / "photos"
    rng = np.random.default_rng(0)
    for name, colour, n in (("common", (220, 30, 30), 40), ("rare", (30, 40, 220), 8)):
        (root / name).mkdir(parents=True)
        for k in range(n):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (20, 20, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{k}.png")
    return root


def test_the_flag_reads_balanced_none_or_class_weights():
    assert parse_class_weight("balanced") == parse_class_weight(" Balanced ") == "balanced"
    assert parse_class_weight(None) is None and parse_class_weight("none") is None
    assert parse_class_weight("cat=2, dog=0.5,a=b=3") == {"cat": 2.0, "dog": 0.5, "a=b": 3.0}
    for bad, message in [("cat", "takes 'balanced' or CLASS=WEIGHT"), ("=2", "CLASS=WEIGHT"),
                         ("cat=x", "CLASS=WEIGHT"), ("cat=-1", "cat=-1: a weight must be a number >= 0"),
                         ("cat=nan", "must be a number >= 0"), ("cat=0,dog=0", "every weight is 0")]:
        with pytest.raises(ConfigurationError, match=message):
            parse_class_weight(bad)


@pytest.mark.parametrize("flag, message", [
    ("rare=-2", "--class-weight rare=-2: a weight must be a number >= 0"),
    ("rear=2", "Unknown class 'rear'. Did you mean 'rare'? Valid classes: common, rare."),
])
def test_bad_class_weights_exit_2_before_anything_is_written(unbalanced, tmp_path, flag, message,
                                                             capsys):
    out = tmp_path / "out"
    assert main(["train", str(unbalanced), "--class-weight", flag, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("transferkit: error:")
    assert not out.exists()


def _tiny_transfer_model(backbone, data, *, weights, name):
    """Stands in for the ImageNet network: the command's plumbing is under test, not its model."""
    import keras

    inp = keras.Input(data.image_shape)
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(keras.layers.Rescaling(1 / 255)(inp))
    return build_transfer_model(keras.Model(inp, features, name="tiny"), data, name=name)


@pytest.mark.backend_neutral
def test_train_warns_about_unbalanced_classes_and_weighs_them_on_request(unbalanced, tmp_path,
                                                                         capsys, monkeypatch):
    monkeypatch.setattr("transferkit.models.builders.build_transfer_model", _tiny_transfer_model)
    out = tmp_path / "run"
    assert main(["train", str(unbalanced), "--image-size", "20", "--head-epochs", "1",
                 "--epochs", "1", "--class-weight", "balanced", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    warning = next(line for line in captured.err.splitlines() if "Unbalanced classes" in line)
    assert warning.startswith("transferkit: warning: Unbalanced classes: common has ")
    assert "(train with --class-weight balanced)" in warning and "balanced accuracy" in warning
    ratio = float(re.search(r"\((\d+\.\d)x\)", warning).group(1))  # largest / smallest class
    assert "Class weights (balanced): 0." in captured.err  # the log says they are in effect
    assert "balanced 0." in captured.out or "balanced 1." in captured.out  # each stage's line
    # The stage kept is chosen on what class weights are for: the small classes too.
    assert "balanced validation accuracy" in re.search(r"Kept .*", captured.out).group(0)
    config = json.loads((out / "run.json").read_text())["config"]
    weights = config["class_weight"]["weights"]
    assert config["class_weight"]["given"] == "balanced"
    assert weights["rare"] / weights["common"] == pytest.approx(ratio, abs=0.05)
    metrics = json.loads((out / "metrics.json").read_text())
    head = metrics["runs"]["frozen_head"]
    assert metrics["class_weight"] == config["class_weight"]
    assert set(head["recall_per_class"]) == {"common", "rare"}
    assert head["balanced_accuracy"] == pytest.approx(np.mean(list(head["recall_per_class"].values())))
    assert "Class (test recall)" in (out / "report.html").read_text()
