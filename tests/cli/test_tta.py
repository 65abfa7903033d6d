"""``predict --tta`` and ``evaluate --tta``: the flag reaches the predictions and the record."""

import csv
import json

import numpy as np
import pytest

from transferkit.cli import main


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """model.keras with a run.json naming its classes, and a labelled tree of 16-px PNGs
    (a test/ folder of 3 classes). The model reads pixels by position with large weights,
    so an image and its mirror image get clearly different probabilities."""
    import keras
    from PIL import Image

    tmp = tmp_path_factory.mktemp("tta")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((16, 16, 3)), keras.layers.Rescaling(1 / 255), keras.layers.Flatten(),
        keras.layers.Dense(3, activation="softmax",
                           kernel_initializer=keras.initializers.RandomNormal(stddev=0.2))])
    model.save(tmp / "model.keras")
    (tmp / "run.json").write_text(json.dumps(
        {"config": {"data": {"class_names": ["a", "b", "c"], "resize": "crop"}}}))
    rng = np.random.default_rng(0)
    for cls in "abc":
        folder = tmp / "photos" / "test" / cls
        folder.mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{k}.png")
    return tmp


def _csv_probabilities(path) -> dict[str, list[float]]:
    rows = list(csv.reader(path.read_text().splitlines()))[1:]
    return {r[0]: [float(r[i + 1]) for i in range(1, len(r), 2)] for r in rows}


def test_predict_tta_averages_each_image_with_its_mirror_image(saved, capsys):
    from PIL import Image

    from transferkit.models.builders import load_model

    photos = saved / "photos" / "test"
    for flag, name in (([], "plain.csv"), (["--tta"], "tta.csv")):
        assert main(["predict", str(saved / "model.keras"), str(photos), "--top-k", "3",
                     "--csv", str(saved / name), *flag]) == 0
    plain, tta = _csv_probabilities(saved / "plain.csv"), _csv_probabilities(saved / "tta.csv")
    model = load_model(saved / "model.keras")
    paths = sorted(plain)
    x = np.stack([np.asarray(Image.open(p)) for p in paths])
    expected = (model.predict(x, verbose=0) + model.predict(x[:, :, ::-1].copy(), verbose=0)) / 2
    for path, p in zip(paths, expected):
        np.testing.assert_allclose(tta[path], sorted(p, reverse=True), atol=1e-4)  # 4 decimals
    assert any(np.abs(np.subtract(plain[p], tta[p])).max() > 1e-3 for p in paths)


def test_evaluate_tta_is_said_and_recorded(saved, capsys):
    from PIL import Image

    from transferkit.models.builders import load_model
    from transferkit.runs.evaluation import evaluate_predictions

    assert main(["evaluate", str(saved / "model.keras"), str(saved / "photos")]) == 0
    assert "mirror image" not in capsys.readouterr().out
    assert main(["evaluate", str(saved / "model.keras"), str(saved / "photos"), "--tta",
                 "--out", str(saved / "ev")]) == 0
    assert "9 images (test/ folder of" in capsys.readouterr().out.replace(
        ", each with its mirror image (--tta)", "")
    metrics = json.loads((saved / "ev" / "metrics.json").read_text())
    assert metrics["tta"] is True
    model = load_model(saved / "model.keras")
    files = sorted((saved / "photos" / "test").rglob("*.png"))
    x = np.stack([np.asarray(Image.open(p)) for p in files])
    y = ["abc".index(p.parent.name) for p in files]
    plain = model.predict(x, verbose=0)
    tta = (plain + model.predict(x[:, :, ::-1].copy(), verbose=0)) / 2
    # The loss is a mean over images: the same whatever order evaluate read them in.
    assert metrics["loss"] == pytest.approx(evaluate_predictions(y, tta, list("abc")).loss, abs=1e-5)
    assert metrics["loss"] != pytest.approx(evaluate_predictions(y, plain, list("abc")).loss,
                                            abs=1e-5)
