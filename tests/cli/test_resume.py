"""``train --config``, the config.toml every run writes, ``--resume`` and ``--tensorboard``."""

import importlib.util
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import BACKEND, MOBILENET_FILE, ROOT, requires_imagenet
from hypothesis import given, settings
from hypothesis import strategies as st

from transferkit.cli import main
from transferkit.cli._config import dumps_toml, load_config, read_toml
from transferkit.cli._parser import build_parser, verb_parser
from transferkit.errors import ConfigurationError
from transferkit.runs.layout import read_history

WRITES_TENSORBOARD = BACKEND == "tensorflow" and importlib.util.find_spec("tensorboard") is not None
requires_tf_summary = pytest.mark.skipif(
    not WRITES_TENSORBOARD, reason="TensorBoard logs are written with tf.summary: needs the "
    f"TensorFlow backend (here {BACKEND}) and the tensorboard package")

# --------------------------------------------------------------------------- TOML written and read

_scalars = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                     st.floats(allow_nan=False), st.text())


@settings(max_examples=30, deadline=None)  # about 1 s
@given(st.dictionaries(st.text(min_size=1), st.one_of(_scalars, st.lists(_scalars, max_size=3),
                                                      st.dictionaries(st.text(), _scalars,
                                                                      max_size=3))))
def test_what_dumps_toml_writes_tomllib_reads_back_the_same(values):
    import tomllib

    try:
        text = dumps_toml(values, header=["a comment", "second line"])
    except ConfigurationError:  # only text that is not UTF-8 (lone surrogates) is refused
        assert any("\ud800" <= c <= "\udfff" for c in repr(values).encode().decode("unicode_escape"))
        return
    assert text.startswith("# a comment\n# second line\n")
    assert tomllib.loads(text) == values


def test_nan_and_none_are_written_as_toml_has_them():
    import tomllib

    back = tomllib.loads(dumps_toml({"a": float("nan"), "b": float("-inf"), "c": None}))
    assert np.isnan(back["a"]) and back["b"] == -np.inf and "c" not in back


# --------------------------------------------------------------------------- --config


def _train_parser():
    return verb_parser(build_parser(), "train")


def test_config_keys_are_the_flag_names_checked_as_the_flags(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('images = "photos"\nhead_epochs = 3\nimage-size = "auto"\nresize = "pad"\n'
                    'budget = 90\nclass-weight = {cat = 2, dog = 1}\noverwrite = true\n')
    values = load_config(path, _train_parser())
    assert values == {"images": str(tmp_path / "photos"), "head_epochs": 3, "image_size": "auto",
                      "resize": "pad", "budget": 90, "class_weight": {"cat": 2.0, "dog": 1.0},
                      "overwrite": True}  # a relative path is taken from the file's folder


@pytest.mark.parametrize("text, message", [
    ("epoch = 3", "unknown key 'epoch' (did you mean 'epochs' or 'head-epochs'?)"),
    ("head-epochs = \"3\"", "'head-epochs' must be a whole number, got \"3\" (a string)"),
    ("seed = 1.5", "'seed' must be a whole number, got 1.5 (a number)"),
    ("overwrite = 1", "'overwrite' must be true or false, got 1 (a whole number)"),
    ("image-size = 32.5", "'image-size': expected 'auto' or a whole number of pixels, got '32.5'"),
    ("resize = \"cropp\"", "'resize' must be one of crop, pad, squash, got \"cropp\""),
    ("backbone = [\"a\"]", "'backbone' must be a string, got ['a'] (a list)"),
    ("class-weight = {cat = \"x\"}", "the weight of 'cat' must be a number"),
    ("debug = true", "unknown key 'debug'"),
    ("epochs = ", "is not valid TOML"),
])
def test_a_bad_config_exits_2_naming_the_key(tmp_path, capsys, text, message):
    path = tmp_path / "run.toml"
    path.write_text(text + "\n")
    assert main(["train", str(tmp_path), "--config", str(path), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"transferkit: error: --config {path}")
    assert message in err[0]
    assert not (tmp_path / "o").exists()


def _checked(argv, monkeypatch):
    """``args`` as train's cheap checks leave them (the handler replaced: nothing trains)."""
    import transferkit.cli._images as images

    seen = {}
    monkeypatch.setattr(images, "train", lambda args: seen.setdefault("args", args) and 0)
    monkeypatch.setattr("transferkit.cli.import_tensorflow", lambda args: None)
    assert main(argv) == 0
    return seen["args"]


def test_flags_on_the_command_line_override_the_config(tmp_path, monkeypatch):
    (tmp_path / "photos" / "a").mkdir(parents=True)
    config = tmp_path / "run.toml"
    config.write_text('images = "photos"\nweights = "none"\nepochs = 4\nhead-epochs = 2\n'
                      'seed = 5\nresize = "pad"\n')
    args = _checked(["train", "--config", str(config), "--epochs=7", "--seed", "5",
                     "--out", str(tmp_path / "o")], monkeypatch)
    assert (args.epochs, args.head_epochs, args.seed, args.resize) == (7, 2, 5, "pad")
    assert args.images == str(tmp_path / "photos") and args.resolved_weights is None
    assert args.image_size == "auto" and args.backbone == "mobilenet_v2"  # the defaults
    other = tmp_path / "other"
    (other / "b").mkdir(parents=True)
    args = _checked(["train", str(other), "--config", str(config), "--out", str(tmp_path / "o")],
                    monkeypatch)
    assert args.images == str(other) and args.epochs == 4  # IMAGES_DIR given wins too


# --------------------------------------------------------------------------- --resume refusals


@pytest.fixture
def stopped(tmp_path):
    """A run folder as a killed ``train`` leaves it: config.toml and a head stage's history."""
    from transferkit.cli._resume import write_run_config

    (tmp_path / "photos" / "a").mkdir(parents=True)
    out = tmp_path / "run"
    (out / "frozen_head").mkdir(parents=True)
    (out / "frozen_head" / "history.csv").write_text("epoch,loss\n0,1.0\n")
    args = build_parser().parse_args(["train", str(tmp_path / "photos"), "--weights", "none",
                                      "--epochs", "3", "--class-weight", "a=2"])
    args.resolved_weights, args.class_weight = None, {"a": 2.0}
    write_run_config(out, args)
    return tmp_path, out


def test_resume_takes_the_recorded_options_and_refuses_different_ones(stopped, capsys,
                                                                      monkeypatch):
    tmp, out = stopped
    args = _checked(["train", "--resume", "--out", str(out)], monkeypatch)
    assert (args.images, args.epochs, args.resolved_weights) == (str(tmp / "photos"), 3, None)
    assert args.class_weight == {"a": 2.0}
    monkeypatch.chdir(tmp)
    args = _checked(["train", "photos", "--resume", "--out", str(out), "--epochs", "3",
                     "--class-weight", "a=2.0"], monkeypatch)
    assert args.epochs == 3  # the same options, spelled otherwise, are the same run
    config = tmp / "other.toml"
    config.write_text('backbone = "mobilenet_v1_025"\n')
    assert main(["train", "--resume", "--out", str(out), "--epochs", "5", "--weights",
                 "imagenet", "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"transferkit: error: --resume: the run in {out} was started with --backbone "
                   f"mobilenet_v2, not mobilenet_v1_025 (from --config {config}); --epochs 3, "
                   "not 5 (from the command line); --weights none, not imagenet (from the command "
                   "line). Leave those options out (they are read from its config.toml) or "
                   "choose another --out."]


@pytest.mark.parametrize("setup, argv, message", [
    ("empty", ["--resume", "--out", "{tmp}/empty"], "--resume: {tmp}/empty holds no transferkit "
     "run to continue (no config.toml); start one without --resume."),
    ("old", ["--resume", "--out", "{tmp}/run"], "holds a run without its config.toml"),
    ("", ["--resume"], "--resume needs --out RUN_FOLDER"),
    ("", ["{tmp}/photos", "--resume", "--overwrite", "--out", "{tmp}/run"], "pass one of them"),
    ("budget", ["--resume", "--out", "{tmp}/run"], "has a --budget"),
    ("", ["{tmp}/photos", "--out", "{tmp}/run"],
     "holds a run that did not finish: pass --resume to continue it"),
])
def test_resume_refuses_what_it_cannot_continue(stopped, capsys, setup, argv, message):
    tmp, out = stopped
    (tmp / "empty").mkdir()
    if setup == "old":
        (out / "config.toml").unlink()
    if setup == "budget":
        with (out / "config.toml").open("a") as f:
            f.write("budget = 60.0\n")
    before = sorted(p.name for p in out.rglob("*"))
    assert main(["train", "--weights", "none", *[a.format(tmp=tmp) for a in argv]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message.format(tmp=tmp) in err[0], err
    assert sorted(p.name for p in out.rglob("*")) == before  # nothing lost


def test_resume_of_a_finished_run_says_so_and_exits_0(stopped, capsys):
    tmp, out = stopped
    (out / "metrics.json").write_text("{}")
    assert main(["train", "--resume", "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"Nothing to resume: the run in {out} finished")


# --------------------------------------------------------------------------- --tensorboard


def test_tensorboard_without_tensorflow_is_refused_before_anything(tmp_path, capsys, monkeypatch):
    import importlib.util

    (tmp_path / "photos" / "a").mkdir(parents=True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name.startswith("tensor") else real(name, *a))
    assert main(["train", str(tmp_path / "photos"), "--weights", "none", "--tensorboard",
                 str(tmp_path / "tb"), "--out", str(tmp_path / "o")]) == 2
    assert ("needs tensorflow and tensorboard: pip install tensorflow tensorboard (or "
            "transferkit[tensorboard]), or leave out --tensorboard.") in capsys.readouterr().err
    assert not (tmp_path / "o").exists() and not (tmp_path / "tb").exists()


@pytest.fixture(scope="session")
def photos(tmp_path_factory):
    """Two colour classes of 16 32-px photos each."""
    from PIL import Image

    root = tmp_path_factory.mktemp("resume") / "photos"
    rng = np.random.default_rng(0)
    for cls, colour in {"red": (220, 30, 30), "blue": (30, 40, 220)}.items():
        (root / cls).mkdir(parents=True)
        for k in range(16):
            pixels = np.clip(np.array(colour) + rng.normal(0, 20, (32, 32, 3)), 0, 255)
            Image.fromarray(pixels.astype(np.uint8)).save(root / cls / f"{k}.png")
    return root


@requires_tf_summary
def test_the_tensorboard_callback_writes_event_files_in_the_stage_folder(tiny, tmp_path):
    from types import SimpleNamespace

    from transferkit import build_baseline_cnn, train
    from transferkit.cli._images import _tensorboard

    assert _tensorboard(SimpleNamespace(tensorboard=None), "frozen_head") == {}
    callbacks = _tensorboard(SimpleNamespace(tensorboard=str(tmp_path / "tb")), "frozen_head")
    train(build_baseline_cnn(tiny, filters=(4,)), tiny, epochs=2, verbose=0, **callbacks)
    events = sorted(p.relative_to(tmp_path / "tb").parent.as_posix()
                    for p in (tmp_path / "tb").rglob("events.out.tfevents*"))
    assert events == ["frozen_head/train", "frozen_head/validation"]


def test_a_run_config_repeats_the_run(stopped, monkeypatch):
    tmp, out = stopped
    recorded = read_toml(out / "config.toml")
    assert recorded == {"images": str(tmp / "photos"), "backbone": "mobilenet_v2",
                        "image-size": "auto", "resize": "crop", "head-epochs": 5, "epochs": 3,
                        "class-weight": {"a": 2.0}, "weights": "none", "seed": 0}
    args = _checked(["train", "--config", str(out / "config.toml"), "--out", str(tmp / "again")],
                    monkeypatch)
    assert {key: getattr(args, key.replace("-", "_")) for key in recorded if key != "weights"} == {
        key: value for key, value in recorded.items() if key != "weights"}
    assert args.resolved_weights is None and args.out == str(tmp / "again")


# --------------------------------------------------------------------------- SIGKILL, then --resume


@pytest.mark.slow
@requires_imagenet  # the head learns in 3 epochs: fine_tune trains no second head first
def test_sigkill_mid_fine_tuning_then_resume_finishes_the_same_run(photos, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "transferkit", "train", str(photos), "--weights",
               str(MOBILENET_FILE), "--image-size", "32", "--head-epochs", "3", "--batch-size",
               "8", "--epochs", "3", "--out", str(out)]
    if WRITES_TENSORBOARD:  # both stages log, the resumed one too
        command += ["--tensorboard", str(tmp_path / "tb")]
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    seen, fine_tuning = [], False
    try:
        for line in process.stdout:
            seen.append(line)
            fine_tuning |= line.startswith("transferkit: == fine_tuned")
            if fine_tuning and line.strip() == "Epoch 2/3":  # epoch 1 is backed up
                process.send_signal(signal.SIGKILL)
                break
        assert process.wait(timeout=30) == -signal.SIGKILL, "".join(seen[-20:])
    finally:
        process.kill()
    assert len(read_history(out / "fine_tuned" / "history.csv")["loss"]) == 1
    head = (out / "frozen_head" / "run.json").read_bytes()
    assert not (out / "metrics.json").exists()

    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, env=env,
                             timeout=300)
    log = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, log[-3000:]
    assert (f"Resuming {out}: frozen_head finished (3 epochs): not trained again; fine_tuned "
            "continues after epoch 1.") in log
    assert "== frozen_head" not in log and "head scores at chance" not in log
    assert "Epoch 1/3" not in log and "Epoch 2/3" in log  # from the last completed epoch
    assert (out / "frozen_head" / "run.json").read_bytes() == head  # not trained again
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resumed"] is True
    assert {name: run["epochs"] for name, run in metrics["runs"].items()} == {
        "frozen_head": 3, "fine_tuned": 3}
    assert metrics["runs"][metrics["kept"]]["test_accuracy"] >= 0.75  # learned: chance is 0.5
    history = read_history(out / "fine_tuned" / "history.csv")
    assert all(len(v) == 3 for v in history.values()) and not np.isnan(history["val_loss"]).any()
    from transferkit import Run, select_run

    kept, why = select_run([Run.load(out / s, load_model=False) for s in ("frozen_head",
                                                                          "fine_tuned")])
    assert (metrics["kept"], metrics["kept_because"]) == (kept.name, why)
    assert (out / "model.keras").samefile(out / kept.name / "model.keras")
    assert not list(out.rglob("backup")) and not [p for p in out.rglob("*") if ".tmp" in p.name]
    if WRITES_TENSORBOARD:
        logs = {p.parent.relative_to(tmp_path / "tb").as_posix()
                for p in (tmp_path / "tb").rglob("events.out.tfevents*")}
        assert {"frozen_head/train", "fine_tuned/train", "fine_tuned/validation"} <= logs
