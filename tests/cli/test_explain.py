"""``transferkit explain``: Grad-CAM overlays of image files, and its one-line errors."""

import json

import keras
import numpy as np
from PIL import Image

from transferkit.cli import main
from transferkit.models.builders import build_baseline_cnn


def test_explain_writes_an_overlay_per_image_and_a_grid(tmp_path, capsys):
    model_file = tmp_path / "run" / "model.keras"
    model_file.parent.mkdir()
    build_baseline_cnn(3, input_shape=(16, 16, 3), filters=(4, 8)).save(model_file)
    (tmp_path / "run" / "run.json").write_text(json.dumps(
        {"config": {"data": {"class_names": ["ant", "bee", "cat"]}}}))
    rng = np.random.default_rng(0)
    for folder in ("photos", "photos/more"):  # the same name twice: both kept
        (tmp_path / folder).mkdir()
        Image.fromarray(rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(
            tmp_path / folder / "a.png")
    (tmp_path / "photos" / "broken.png").write_bytes(b"not a picture")
    single = tmp_path / "b.jpg"
    Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(single)
    out = tmp_path / "cams"
    assert main(["explain", str(model_file), str(tmp_path / "photos"), str(single),
                 "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == [
        "a_gradcam.png", "a_gradcam_2.png", "b_gradcam.png", "grad_cam_grid.png"]
    lines = captured.out.strip().splitlines()
    assert lines[-1] == f"Wrote 3 Grad-CAM overlays and grad_cam_grid.png to {out}"
    path, prediction, target = lines[-2].split("\t")
    assert path == str(single) and target == str(out / "b_gradcam.png")
    assert prediction.split()[0] in ("ant", "bee", "cat")
    assert "skipped 1 unreadable image(s)" in captured.err and "broken.png" in captured.err
    assert Image.open(out / "grad_cam_grid.png").size[0] > Image.open(out / "b_gradcam.png").size[0]


def test_explain_refuses_a_bad_model_file_or_a_model_without_convolutions(tmp_path, capsys):
    image = tmp_path / "x.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(image)
    not_a_model = tmp_path / "notes.keras"
    not_a_model.write_text("hello")
    dense = tmp_path / "dense.keras"
    keras.Sequential([keras.Input((8, 8, 3)), keras.layers.Flatten(),
                      keras.layers.Dense(2, activation="softmax")], name="dense").save(dense)
    for model, message in ((tmp_path / "missing.keras", "does not exist"),
                           (not_a_model, "not a Keras model file"),
                           (dense, "Grad-CAM needs a convolutional layer")):
        assert main(["explain", str(model), str(image), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("transferkit: error:") and message in err[0]
    assert not (tmp_path / "o").exists()
