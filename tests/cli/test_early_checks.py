"""Every verb's cheap bad inputs: exit 2, one line, before TensorFlow and before any decoding.

One subprocess runs every case through ``cli.main`` with image decoding made to
fail and the download host unreachable, then reports per case the exit code,
what was printed, the CPU seconds it took and whether Keras or TensorFlow was
imported by then.
"""

import json
import os
import socket
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from conftest import ROOT

HDF5 = b"\x89HDF\r\n\x1a\n" + bytes(64)  # the signature a real weights file starts with

CASES = [
    # (argv, what the one line says)
    (["train", "{tmp}/missing"], "IMAGES_DIR '{tmp}/missing' does not exist"),
    (["train", "{photos}", "--image-size", "0"], "--image-size must be 1 or more, got 0"),
    (["train", "{photos}", "--head-epochs", "0"], "--head-epochs must be 1 or more"),
    (["train", "{photos}", "--epochs", "-1"], "--epochs must be 0 or more"),
    (["train", "{photos}", "--backbone", "mobilenet_v9"], "Unknown backbone 'mobilenet_v9'"),
    (["train", "{photos}", "--budget", "soon"], "--budget 'soon' is not a duration"),
    (["run", "transfer_vs_baseline", "--budget", "0"], "--budget must be more than 0 seconds"),
    (["train", "{photos}", "--class-weight", "a=-1"], "a weight must be a number >= 0"),
    (["train", "{photos}", "--weights", "{tmp}/notes.txt"], "notes.txt is not a Keras weights file"),
    (["train", "{photos}", "--weights", "{tmp}/fake.h5"], "does not hold HDF5 data"),
    (["train", "{photos}", "--weights", "{tmp}/mobilenet_2_5_224_tf_no_top.h5"],
     "holds mobilenet_v1_025 weights, not mobilenet_v2 weights"),
    (["train", "{photos}", "--image-size", "32"],  # ImageNet weights, offline, not cached
     "Put the file mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5 into "
     "{keras_home}/models/, or pass --weights none, or --weights FILE."),
    (["train", "{photos}"], "Keras names the file by input size: 96, 128, 160, 192, 224 px"),
    (["train", "--config", "{tmp}/typo.toml"],
     "--config {tmp}/typo.toml: unknown key 'head-epoch' (did you mean 'head-epochs'"),
    (["train", "--resume", "--out", "{tmp}/empty"], "holds no transferkit run to continue"),
    (["train", "--resume", "--out", "{tmp}/stopped", "--backbone", "mobilenet_v1_025"],
     "was started with --backbone mobilenet_v2, not mobilenet_v1_025 (from the command line)"),
    (["train", "{photos}", "--distribute"], "--distribute needs TF_CONFIG naming the job's"),
    (["train", "{photos}", "--weights", "none", "--out", "{tmp}/busy", "--overwrite"],
     "{tmp}/busy is being written by another job (process"),
    (["predict", "{tmp}/missing.keras", "x.jpg"], "does not exist"),
    (["predict", "{tmp}/notes.txt", "{photos}"], "notes.txt is not a Keras model file"),
    (["predict", "{tmp}/fake.keras", "{photos}"], "fake.keras is not a Keras model file"),
    (["predict", "{tmp}/m.keras", "{photos}", "--top-k", "0"], "--top-k must be 1 or more"),
    (["predict", "{tmp}/m.keras", "{tmp}/nothing-here"], "'{tmp}/nothing-here' does not exist"),
    (["predict", "{tmp}/m.keras", "{tmp}/empty"], "No images in {tmp}/empty"),
    (["evaluate", "{tmp}/m.keras", "{tmp}/missing"], "DATA '{tmp}/missing' does not exist"),
    (["evaluate", "{tmp}/notes.txt", "{photos}"], "not a Keras model file"),
    (["quickstart", "--data", "{tmp}/missing", "--out", "{tmp}/qs"], "does not exist"),
    (["quickstart", "--per-class", "0", "--out", "{tmp}/qs"], "--per-class must be 1 or more"),
    (["quickstart", "--strict", "--out", "{tmp}/qs"], "cannot be downloaded"),
    (["quickstart", "--weights", "{tmp}/notes.txt", "--out", "{tmp}/qs"], "not a Keras weights file"),
    (["report", "{tmp}/missing"], "holds no run.json"),
    (["report", "{tmp}/run", "--image-size", "0"], "--image-size must be 1 or more"),
    (["run", "two_stage", "--weights", "{tmp}/none.h5"], "does not exist"),
    (["run", "two_stage", "--weights", "{tmp}/notes.txt"], "not a Keras weights file"),
    (["run", "backbones", "--weights", "resnet9={tmp}/fake.h5"], "Unknown backbone 'resnet9'"),
    (["run", "two_stage", "--data", "{tmp}/missing"], "does not exist"),
    (["run", "two_stage", "--per-class", "0"], "--per-class must be 1 or more"),
    (["run", "--distribute", "two_stage"], "--distribute needs TF_CONFIG"),
]

RUNNER = """
import contextlib, io, json, sys, time
import transferkit.data.images as images
import transferkit.models.files as files
from transferkit.cli import main

def no_decoding(*args, **kwargs):
    raise AssertionError("an image was decoded")

images.decode_images = no_decoding
files.can_download = lambda *args, **kwargs: False  # offline, whatever the machine
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    start = time.process_time()
    with contextlib.redirect_stderr(err):
        code = main(argv)
    results.append({"code": code, "err": err.getvalue(), "cpu_s": time.process_time() - start,
                    "heavy": sorted({"tensorflow", "keras"} & set(sys.modules))})
print(json.dumps(results))
"""


@pytest.fixture(scope="session")
def inputs(tmp_path_factory):
    """Photos, a fake model and fake weights files, an empty Keras cache."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("early")
    for cls in ("a", "b"):
        (tmp / "photos" / cls).mkdir(parents=True)
        for k in range(3):
            Image.new("RGB", (8, 8), (40 * k, 90, 200)).save(tmp / "photos" / cls / f"{k}.png")
    (tmp / "empty").mkdir()
    (tmp / "run").mkdir()
    (tmp / "run" / "run.json").write_text("{}")
    (tmp / "notes.txt").write_text("my notes, not weights\n")
    (tmp / "fake.h5").write_text("a text file named .h5\n")
    (tmp / "fake.keras").write_text("a text file named .keras\n")
    (tmp / "mobilenet_2_5_224_tf_no_top.h5").write_bytes(HDF5)  # MobileNet v1's, by name
    with zipfile.ZipFile(tmp / "m.keras", "w") as z:  # passes the cheap model-file check
        z.writestr("config.json", "{}")
    (tmp / "keras-home" / "models").mkdir(parents=True)
    (tmp / "typo.toml").write_text(f'images = "{tmp / "photos"}"\nhead-epoch = 3\n')
    (tmp / "busy").mkdir()  # a run folder this (live) test process holds the lock of
    (tmp / "busy" / "run.json").write_text("{}")
    (tmp / "busy" / ".lock").write_text(json.dumps({"host": socket.gethostname(),
                                                    "pid": os.getpid()}))
    (tmp / "stopped").mkdir()  # what a killed `train` leaves: its options
    (tmp / "stopped" / "config.toml").write_text(
        f'# transferkit train: the options of the run in this folder\nimages = "{tmp / "photos"}"\n'
        'backbone = "mobilenet_v2"\nweights = "none"\n')
    return tmp


@pytest.fixture(scope="session")
def results(inputs):
    tmp = inputs
    argvs = [[a.format(tmp=tmp, photos=tmp / "photos") for a in argv] for argv, _ in CASES]
    env = {**os.environ, "KERAS_HOME": str(tmp / "keras-home"), "PYTHONPATH": str(ROOT / "src")}
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(argvs)], capture_output=True,
                          text=True, timeout=300, env=env, cwd=tmp)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize("case", range(len(CASES)), ids=[" ".join(a[:3]) for a, _ in CASES])
def test_cheap_bad_input_fails_at_once_in_one_line_without_tensorflow(inputs, results, case):
    argv, message = CASES[case]
    result = results[case]
    message = message.format(tmp=inputs, keras_home=inputs / "keras-home")
    lines = result["err"].strip().splitlines()
    assert result["code"] == 2, result["err"]
    assert len(lines) == 1 and lines[0].startswith("transferkit: error: "), lines
    assert message in lines[0]
    assert "weights=" not in lines[0] and "data_dir=" not in lines[0]  # the CLI's terms
    assert result["heavy"] == []  # neither Keras nor TensorFlow was imported
    assert result["cpu_s"] < 1.0  # no TensorFlow start-up (5 s), no decoding


def test_the_checks_leave_every_input_as_it_was(inputs, results):
    assert len(list((inputs / "photos").rglob("*.png"))) == 6
    assert not (inputs / "qs").exists() and not (inputs / "runs").exists()
    assert sum(r["cpu_s"] for r in results) < 0.5 * len(results)


def test_a_weights_file_is_checked_by_name_and_first_bytes(tmp_path):
    from transferkit.errors import ConfigurationError
    from transferkit.models.files import check_model_file, check_weights_arg

    good = tmp_path / "mine.weights.h5"
    good.write_bytes(HDF5)
    assert check_weights_arg(good) == str(good)
    offset = tmp_path / "user-block.h5"  # HDF5 allows a 512-byte user block before it
    offset.write_bytes(bytes(512) + HDF5)
    assert check_weights_arg(offset) == str(offset)
    zipped = tmp_path / "model.keras"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("config.json", "{}")
    assert check_weights_arg(zipped) == str(zipped) and check_model_file(zipped) == zipped
    renamed = tmp_path / "photo.h5"
    renamed.write_bytes(np.zeros(100, np.uint8).tobytes())
    with pytest.raises(ConfigurationError, match="does not hold HDF5 data"):
        check_weights_arg(renamed)
    with pytest.raises(ConfigurationError, match="does not hold HDF5 data"):
        check_model_file(renamed)
