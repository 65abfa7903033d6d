"""``transferkit train --stream`` and ``evaluate --stream``: folders read from disk batch by batch."""

import json

import numpy as np
import pytest

from transferkit.cli import main
from transferkit.data import stream
from transferkit.models.builders import build_transfer_model


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """A flat tree of two colours, 30 PNG photos each."""
    from PIL import Image

    root = tmp_path_factory.mktemp("stream-cli") / "photos"
    rng = np.random.default_rng(0)
    for name, colour in (("red", (220, 30, 30)), ("blue", (30, 40, 220))):
        (root / name).mkdir(parents=True)
        for k in range(30):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (24, 20, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{k}.png")
    return root


def _tiny_transfer_model(backbone, data, *, weights, name):
    """Stands in for the ImageNet network: the command's plumbing is under test, not its model."""
    import keras

    inp = keras.Input(data.image_shape)
    features = keras.layers.Conv2D(4, 3, strides=2, name="conv")(keras.layers.Rescaling(1 / 255)(inp))
    return build_transfer_model(keras.Model(inp, features, name="tiny"), data, name=name)


@pytest.mark.backend_neutral
def test_train_and_evaluate_stream_the_folder(photos, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("transferkit.cli._images.build_transfer_model", _tiny_transfer_model,
                        raising=False)
    monkeypatch.setattr("transferkit.models.builders.build_transfer_model", _tiny_transfer_model)
    listed = []
    real = stream.ImageFiles.__init__
    monkeypatch.setattr(stream.ImageFiles, "__init__",
                        lambda self, *a, **k: listed.append(1) or real(self, *a, **k))
    out = tmp_path / "run"
    assert main(["train", str(photos), "--stream", "--image-size", "20", "--head-epochs", "1",
                 "--epochs", "1", "--out", str(out)]) == 0
    assert listed  # the images were streamed, not decoded into memory
    metrics = json.loads((out / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["evaluate", str(out / "model.keras"), str(photos), "--stream"]) == 0
    printed = capsys.readouterr().out
    assert "60 images (every image of" in printed and "accuracy" in printed
    assert metrics["kept"] in ("frozen_head", "fine_tuned")
