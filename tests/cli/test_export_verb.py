"""``transferkit export``: what it writes and prints, and one line, exit 2, nothing written for
each bad request (most of them answered before TensorFlow loads)."""

import importlib.util
import os
import re
import subprocess
import sys

import keras
import pytest
from conftest import BACKEND, png_bytes

import transferkit as tk
from transferkit.cli import main


@pytest.fixture
def saved(tiny, tmp_path):
    """A tiny CNN saved as run/model.keras, and its images as a train/ + test/ tree."""
    keras.utils.set_random_seed(0)
    model = tk.build_baseline_cnn(tiny, filters=(4,), head=(8,))
    (tmp_path / "run").mkdir()
    model.save(tmp_path / "run" / "model.keras")
    for split in ("train", "test"):
        x, y = tiny.split(split)
        for i, (image, label) in enumerate(zip(x, y)):
            folder = tmp_path / "images" / split / tiny.class_names[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{i}.png").write_bytes(png_bytes(image))
    return tmp_path / "run" / "model.keras"


def _one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("transferkit: error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


@pytest.mark.skipif(BACKEND != "tensorflow", reason="TFLite export needs the TensorFlow backend")
def test_int8_export_reports_its_accuracy_change_and_size(saved, capsys):
    assert main(["export", str(saved), "--format", "tflite", "--quantize", "int8",
                 "--data", str(saved.parents[1] / "images")]) == 0
    out = capsys.readouterr().out
    written = saved.with_name("model_int8.tflite")
    assert written.is_file()
    assert f"Wrote {written} (TFLite int8," in out and "takes uint8 images (n x 16x16x3)" in out
    calibrated = int(re.search(r"Calibrated on (\d+) training images", out).group(1))
    train_files = len(list((saved.parents[1] / "images" / "train").rglob("*.png")))
    assert 0 < calibrated <= train_files  # from the training split (less what validation took)
    assert "On the 24 test images of" in out and "(TFLite int8)" in out and " points;" in out
    assert sorted(p.name for p in saved.parent.iterdir()) == ["model.keras", "model_int8.tflite"]


def test_onnx_export_checks_what_it_wrote(saved, capsys):
    if BACKEND == "jax":
        pytest.skip("ONNX export is not offered on the jax backend")
    for package in ("onnx", "onnxruntime") + (("tf2onnx",) if BACKEND == "tensorflow" else ()):
        pytest.importorskip(package, reason=f"{package} is not installed (the export extra)")
    out_path = saved.parent / "served" / "cnn.onnx"
    assert main(["export", str(saved), "--format", "onnx", "--out", str(out_path)]) == 0
    out = capsys.readouterr().out
    assert out_path.is_file() and f"Wrote {out_path} (ONNX," in out
    assert "Checked: its probabilities are within" in out and "of the model's on 8 images" in out


def test_bad_requests_get_one_line_exit_2_and_nothing_written(saved, tmp_path, capsys,
                                                              monkeypatch):
    features, _ = tk.load_model(saved).split_at_pool()
    features.save(tmp_path / "features.keras")
    (tmp_path / "fake.keras").write_text("not a model")
    saved.with_name("model.tflite").write_bytes(b"an earlier export")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    model = str(saved)
    cases = [
        ([str(tmp_path / "missing.keras"), "--format", "onnx"], "does not exist"),
        ([str(tmp_path / "fake.keras"), "--format", "onnx"], "is not a Keras model file"),
        ([str(tmp_path / "features.keras"), "--format", "onnx"], "not a transferkit classifier"),
        ([model, "--format", "tflit"], "Did you mean 'tflite'"),
        ([model, "--format", "onnx", "--quantize", "int8"], "for TFLite files, not ONNX"),
    ]
    if BACKEND == "tensorflow":  # elsewhere TFLite stops at the backend (below)
        cases += [
            ([model, "--format", "tflite", "--quantize", "int8",
              "--out", str(tmp_path / "q.tflite")], "pass --data IMAGES_DIR"),
            ([model, "--format", "tflite"], "exists: pass --overwrite"),
            ([model, "--format", "tflite", "--out", str(tmp_path / "m.onnx")], "use "),
        ]
    else:
        cases.append(([model, "--format", "tflite"], "KERAS_BACKEND=tensorflow"))
    if BACKEND in ("tensorflow", "torch"):
        cases.append(([model, "--format", "onnx"], "Install with: pip install onnx "))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    for argv, fragment in cases:
        assert main(["export", *argv]) == 2, argv
        assert fragment in _one_line_error(capsys), argv
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert saved.with_name("model.tflite").read_bytes() == b"an earlier export"


def test_bad_requests_are_answered_before_tensorflow_loads(tmp_path):
    (tmp_path / "fake.keras").write_text("not a model")
    code = ("import sys\nfrom transferkit.cli import main\n"
            f"code = main(['export', {str(tmp_path / 'fake.keras')!r}, '--format', 'tflite'])\n"
            "print(code, 'HEAVY' if {'tensorflow', 'keras'} & set(sys.modules) else 'LIGHT')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "KERAS_BACKEND": BACKEND})
    assert done.stdout.split() == ["2", "LIGHT"], done.stderr[-2000:]
    assert "is not a Keras model file" in done.stderr
