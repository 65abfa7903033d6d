import json

import numpy as np
import pytest
from conftest import CIFAR_ARCHIVE, requires_cifar, requires_imagenet

from transferkit.cli import main

pytestmark = pytest.mark.xdist_group("cli")  # one worker trains the module's own_images run (pytest -n)


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "quickstart" in out and "info" in out


def test_no_command_is_a_usage_error():
    assert main([]) == 2


def test_info_reports_lookup_places(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "KERAS_HOME" in out and "mobilenet_v2" in out and "CIFAR-10 is looked up in" in out
    # The README's --weights file is a 224-px one: the list says it covers the cache only.
    assert "a file given with --weights is used as it is" in out


def test_input_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["quickstart", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "Traceback" not in err[0]


@pytest.mark.backend_neutral
def test_quickstart_strict_refuses_to_fall_back_offline(tmp_path, capsys, monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert main(["quickstart", "--strict", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "FALLBACK" not in err and "cifar-10-python.tar.gz" in err, err
    assert not (tmp_path / "s" / "metrics.json").exists()
    # The fallback itself runs in test_messages' offline quickstart (one run for both).


@pytest.mark.slow
@requires_cifar
@requires_imagenet
@pytest.mark.realdata
def test_quickstart_on_real_data(tmp_path, capsys):
    code = main(["quickstart", "--data", str(CIFAR_ARCHIVE), "--per-class", "60", "--epochs", "3",
                 "--out", str(tmp_path)])
    assert code == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    rows = {r["run"]: r for r in metrics["comparison"]["rows"]}
    assert set(rows) == {"mobilenet_v2_frozen", "baseline_cnn_scratch"}
    assert rows["mobilenet_v2_frozen"]["test_accuracy"] > 0.3  # chance 0.10
    for name in ("learning_curves.png", "transfer/model.keras", "baseline/history.csv"):
        assert (tmp_path / name).stat().st_size > 0
    assert "| mobilenet_v2_frozen |" in capsys.readouterr().out


# --------------------------------------------------------------------------- startup


def _fresh_python(code: str) -> str:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout + done.stderr


def test_help_and_info_never_import_tensorflow():
    out = _fresh_python(
        "import sys\n"
        "from transferkit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "main(['info'])\n"
        "print('TF LOADED' if 'tensorflow' in sys.modules or 'keras' in sys.modules else 'LIGHT')\n"
    )
    assert "LIGHT" in out and "mobilenet_v1_025" in out


def test_import_transferkit_is_light_and_names_load_on_use():
    out = _fresh_python(
        "import sys, transferkit as tk\n"
        "print('heavy' if 'tensorflow' in sys.modules else 'light')\n"
        "print(tk.load_cifar10.__module__, 'keras' in sys.modules)\n"
    )
    assert out.splitlines()[0] == "light"
    assert "transferkit.data.cifar" in out


def test_commands_print_no_tensorflow_start_up_lines(tmp_path):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "transferkit", "predict", str(tmp_path / "m.keras"), "x.png"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"transferkit: error: Model file {str(tmp_path / 'm.keras')!r} does not exist."]


def test_logging_handler_is_installed_once():
    import logging

    from transferkit.cli import configure_logging

    for _ in range(3):
        configure_logging("normal")
    handlers = [h for h in logging.getLogger("transferkit").handlers
                if getattr(h, "_transferkit_cli", False)]
    assert len(handlers) == 1


# --------------------------------------------------------------------------- errors


def test_options_may_come_before_the_experiment_name():
    from transferkit.cli._parser import common_options_first

    assert common_options_first(["run", "--quick", "--data", "x", "two_stage", "--seed", "1"]) == [
        "run", "two_stage", "--quick", "--data", "x", "--seed", "1"]
    assert common_options_first(["run", "--help"]) == ["run", "--help"]


def test_run_without_a_name_asks_for_one_and_run_list_lists_them(capsys):
    # It said "the following arguments are required: NAME, options", and `run list` was
    # an invalid choice.
    for argv in (["run"], ["run", "--quick"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "name an experiment: transfer_vs_baseline" in err and "options" not in err
    assert main(["run", "list"]) == 0
    out = capsys.readouterr().out
    assert "backbones" in out and "two_stage" in out
    with pytest.raises(SystemExit):
        main(["run", "--quick", "--help"])
    assert "--per-class" in capsys.readouterr().out


def test_run_help_lists_the_common_options(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    out = capsys.readouterr().out
    assert "--quick" in out and "--weights" in out and "--per-class" in out


def test_library_messages_speak_cli_flags():
    from transferkit.cli import cli_terms

    text = cli_terms("Put it there (or pass weights=None, or weights=<path to a weights file>). "
                     "Pass data_dir=, or pass image_size= to resize.")
    assert text == ("Put it there (or pass --weights none, or --weights FILE). "
                    "Pass --data PATH, or pass --image-size N to resize.")


def test_multi_line_errors_are_printed_whole(tmp_path, capsys, monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert main(["run", "two_stage", "--quick", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "at one of:" in err and "cifar-10-python.tar.gz" in err.split("at one of:")[1]
    assert "--data PATH" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["train", "{tmp}/missing"], "does not exist"),
    (["train", "{photos}", "--image-size", "0"], "--image-size must be 1 or more"),
    (["train", "{photos}", "--weights", "{tmp}/none.h5"], "does not exist"),
    (["train", "{photos}", "--backbone", "mobilenet_v9"], "Unknown backbone"),
    (["train", "{photos}", "--budget", "0"], "--budget must be more than 0 seconds"),
    (["train", "{photos}", "--budget", "soon"], "--budget 'soon' is not a duration"),
    (["predict", "{tmp}/missing.keras", "x.jpg"], "does not exist"),
    (["predict", "{tmp}/run/model.keras", "{tmp}/nothing-here"], "does not exist"),
    (["predict", "{tmp}/run/model.keras", "{photos}", "--top-k", "0"], "--top-k"),
    (["predict", "{photos}/a/0.png", "{photos}"], "not a Keras model file"),
    (["evaluate", "{tmp}/run/model.keras", "{tmp}/missing"], "does not exist"),
    (["run", "two_stage", "--weights", "{tmp}/none.h5"], "does not exist"),
    (["quickstart", "--data", "{tmp}/missing", "--out", "{tmp}/qs"], "does not exist"),
    (["report", "{tmp}/missing"], "holds no run.json"),
])
def test_every_verb_refuses_bad_input_with_exit_2(own_images, argv, message, capsys):
    tmp, photos = own_images
    argv = [a.format(tmp=tmp, photos=photos) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("transferkit: error:")


# --------------------------------------------------------------------------- your own images


@pytest.fixture(scope="session")
def own_images(tmp_path_factory):
    """A train/ + val/ photo tree of 3 colour classes, mixed formats and sizes, and a
    model trained on it by `transferkit train` (random weights: this is about plumbing).
    MobileNet v1 0.25, not the default MobileNetV2: the tests read the run's files, not
    the network, and its 86 layers trace in about a third less time (20 s, not 28 s)."""
    from PIL import Image

    tmp = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    colours = {"a": (220, 30, 30), "b": (30, 200, 40), "c": (30, 40, 220)}
    for split, n in (("train", 12), ("val", 4)):
        for cls, colour in colours.items():
            folder = tmp / "photos" / split / cls
            folder.mkdir(parents=True)
            for k in range(n):
                h, w = rng.integers(24, 60, 2)
                pixels = np.clip(np.array(colour) + rng.normal(0, 25, (h, w, 3)), 0, 255)
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{k}{('.png', '.jpg', '.webp')[k % 3]}")
    assert main(["train", str(tmp / "photos"), "--weights", "none", "--image-size", "32",
                 "--backbone", "mobilenet_v1_025", "--head-epochs", "2", "--epochs", "1",
                 "--out", str(tmp / "run"), "-q"]) == 0
    return tmp, tmp / "photos" / "val"


def test_train_writes_a_model_with_its_class_names(own_images, capsys):
    tmp, _ = own_images
    run = json.loads((tmp / "run" / "run.json").read_text())
    assert run["config"]["data"]["class_names"] == ["a", "b", "c"]
    assert run["config"]["data"]["sizes"]["test"] == 12  # val/ is the test split
    assert run["config"]["data"]["resize"] == "crop"
    for name in ("model.keras", "metrics.json", "report.html", "slides.html", "learning_curves.png",
                 "confusion_matrix.png", "frozen_head/run.json", "fine_tuned/run.json"):
        assert (tmp / "run" / name).stat().st_size > 0


def test_train_keeps_the_stage_better_on_validation_and_says_why(own_images):
    from transferkit import Run, load_model, select_run

    tmp, _ = own_images
    metrics = json.loads((tmp / "run" / "metrics.json").read_text())
    stages = [Run.load(tmp / "run" / name, load_model=False) for name in ("frozen_head", "fine_tuned")]
    kept, why = select_run(stages)  # chosen on validation, from the stages' own records
    assert metrics["kept"] == kept.name and metrics["kept_because"] == why
    assert json.loads((tmp / "run" / "run.json").read_text())["config"]["kept"] == why
    report = (tmp / "run" / "report.html").read_text()  # the report says it too, in words
    assert "model.keras holds" in report and "chosen on the validation split" in report
    x = np.random.default_rng(1).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    saved = load_model(tmp / "run" / "model.keras").predict(x, verbose=0)
    np.testing.assert_allclose(saved, load_model(tmp / "run" / kept.name / "model.keras")
                               .predict(x, verbose=0), atol=1e-6)


@pytest.mark.backend_neutral
def test_train_keeps_the_head_when_the_budget_leaves_no_time_to_fine_tune(own_images, capsys):
    tmp, _ = own_images
    assert main(["train", str(tmp / "photos"), "--weights", "none", "--image-size", "32",
                 "--head-epochs", "1", "--budget", "16s", "--out", str(tmp / "budget"), "-q"]) == 0
    err = capsys.readouterr().err
    assert "no fine-tuning within --budget 16" in err and "was spent before training" in err
    metrics = json.loads((tmp / "budget" / "metrics.json").read_text())
    assert list(metrics["runs"]) == ["frozen_head"] and metrics["kept"] == "frozen_head"


def test_predict_names_classes_and_writes_csv(own_images, capsys):
    import csv

    tmp, val = own_images
    assert main(["predict", str(tmp / "run" / "model.keras"), str(val / "a"), str(val / "b" / "0.png"),
                 "--top-k", "2", "--csv", str(tmp / "p.csv")]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 6  # 4 + 1 images, then "Wrote ..."
    rows = list(csv.reader((tmp / "p.csv").read_text().splitlines()))
    assert rows[0] == ["path", "class_1", "prob_1", "class_2", "prob_2"]
    assert {r[1] for r in rows[1:]} <= {"a", "b", "c"} and len(rows) == 6
    assert all(0 <= float(r[2]) <= 1 and float(r[2]) >= float(r[4]) for r in rows[1:])


def test_evaluate_scores_a_folder_with_the_model_classes(own_images, capsys):
    tmp, val = own_images
    assert main(["evaluate", str(tmp / "run" / "model.keras"), str(val), "--out", str(tmp / "ev")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("12 images (every image of") and "accuracy" in out
    metrics = json.loads((tmp / "ev" / "metrics.json").read_text())
    assert metrics["class_names"] == ["a", "b", "c"] and 0 <= metrics["accuracy"] <= 1
    assert "trained on" not in err  # val/ alone is not the training folder


def test_evaluate_on_the_training_folder_says_the_accuracy_is_optimistic(own_images, capsys):
    tmp, _ = own_images
    assert main(["evaluate", str(tmp / "run" / "model.keras"), str(tmp / "photos")]) == 0
    err = capsys.readouterr().err
    assert "is the folder this model was trained on" in err and "optimistic" in err


def test_warnings_print_as_one_cli_line_without_source(capsys):
    import warnings

    from transferkit.cli import _show_warning

    _show_warning(UserWarning("Few training images: pass image_size="), UserWarning,
                  "/x/_images.py", 39)
    _show_warning(DeprecationWarning("old"), DeprecationWarning, "/x/lib.py", 7)
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "transferkit: warning: Few training images: pass --image-size N"
    assert err[1].startswith("/x/lib.py:7: DeprecationWarning: old")
    before = warnings.showwarning
    assert main(["train", "/no/such/folder"]) == 2
    assert warnings.showwarning is before  # restored after the command


def test_train_stores_each_model_once(own_images):
    import hashlib

    run = own_images[0] / "run"
    kept = json.loads((run / "metrics.json").read_text())["kept"]
    assert (run / "model.keras").samefile(run / kept / "model.keras")  # a link, not a 3rd copy
    files: dict[tuple, set] = {}
    for path in run.rglob("*.keras"):
        key = (path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest())
        files.setdefault(key, set()).add(path.stat().st_ino)
    assert all(len(inodes) == 1 for inodes in files.values())  # no bytes stored twice
    assert not list(run.rglob("backup"))  # resume state goes once a run has finished
