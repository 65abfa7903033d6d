"""Every documented experiment runs end to end in --quick mode on the real CIFAR-10 copy.

--quick uses a small real subset and a few epochs: these tests check the
pipeline and the artefacts, and that the pretrained models learn (accuracy
well above chance), not the figures of the full runs (docs/results.md).
"""

import json
import subprocess
import sys

import keras
import pytest
from conftest import CIFAR_ARCHIVE, ROOT, requires_cifar, requires_imagenet

from transferkit.cli import main
from transferkit.experiments import EXPERIMENTS, load
from transferkit.runs.layout import read_history

pytestmark = [requires_cifar, requires_imagenet, pytest.mark.realdata]

# The run whose test accuracy must beat chance clearly, and the chance level.
KEY_RUN = {
    "transfer_vs_baseline": ("mobilenet_v2_frozen", 0.10),
    "mobilenetv2_frozen": ("mobilenet_v2_frozen", 0.10),
    "two_stage": ("stage2", 1 / 3),
    "liltinynet": ("finetuned", 0.10),
    "backbones": ("mobilenet_v2_frozen", 0.10),
}
# backbones: resnet50's weights are missing (made so below, whatever the machine has) and
# skipped when asked, so the quick run also covers --missing-weights skip.
# mobilenetv2_frozen's two runs also share a --budget: generous, so the epochs still end them
# and the first run's unused time passes to the second (_specific_checks).
EXTRA_ARGS = {"mobilenetv2_frozen": ["--native-32px", "--budget", "30m"],
              "backbones": ["--backbones", "resnet50,mobilenet_v2", "--missing-weights", "skip"]}


def _run(name, out, *extra):
    return main(["run", name, "--quick", "--data", str(CIFAR_ARCHIVE), "--out", str(out),
                 *EXTRA_ARGS.get(name, []), *extra])


def _run_example_script(name, out) -> int:
    """Run examples/NAME.py as a user would (a program of its own), checking its output."""
    done = subprocess.run([sys.executable, str(ROOT / "examples" / f"{name}.py"), "--quick",
                           "--data", str(CIFAR_ARCHIVE), "--out", str(out), *EXTRA_ARGS.get(name, [])],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"| {KEY_RUN[name][0]} |" in done.stdout
    # TensorFlow's start-up lines (oneDNN, CUDA probe, cuInit ERROR) stay hidden.
    assert "I0000" not in done.stderr and "cuInit" not in done.stderr, done.stderr[:500]
    return done.returncode


def _offline_resnet(monkeypatch):
    from transferkit.errors import WeightsNotFoundError
    from transferkit.experiments import backbones

    real = backbones.build_transfer_model

    def build(name, *args, **kwargs):
        if name == "resnet50":  # stands in for a machine without the file and no network
            raise WeightsNotFoundError("Put the file resnet50_weights.h5 into models/. Cause: offline")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backbones, "build_transfer_model", build)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(EXPERIMENTS))
def test_experiment_quick_run_writes_sane_artefacts(name, tmp_path, monkeypatch):
    if name == "two_stage":  # examples/*.py are what users open first: one runs as a program
        assert _run_example_script(name, tmp_path) == 0
    else:
        if name == "backbones":
            _offline_resnet(monkeypatch)
        assert _run(name, tmp_path) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["experiment"] == name and metrics["mode"] == "quick"
    key, chance = KEY_RUN[name]
    threshold = 2 * chance if chance < 0.2 else chance + 0.1
    assert metrics["runs"][key]["accuracy"] > threshold, metrics["comparison"]
    for run_name, summary in metrics["runs"].items():
        assert 0 <= summary["accuracy"] <= 1 and 0 <= summary["f1"] <= 1
        run_dir = next(p.parent for p in tmp_path.rglob("run.json") if p.parent.name == run_name)
        history = read_history(run_dir / "history.csv")
        assert len(history["loss"]) == summary["epochs_run"] >= 1
        assert (run_dir / "model.keras").stat().st_size > 0 and (run_dir / "best.keras").exists()
    key_dir = next(p.parent for p in tmp_path.rglob("run.json") if p.parent.name == key)
    assert keras.saving.load_model(key_dir / "model.keras").output_shape[-1] >= 3
    html = (tmp_path / "report.html").read_text()
    assert html.count("<img") >= 2 and "Test accuracy" in html
    assert (tmp_path / "learning_curves.png").stat().st_size > 10_000
    assert list(tmp_path.glob("confusion_*.png")) and list(tmp_path.glob("classification_report_*.txt"))
    _specific_checks(name, tmp_path, metrics)


def _specific_checks(name, out, metrics):
    if name == "transfer_vs_baseline":
        assert (out / "feature_maps.png").exists() and metrics["feature_map_layer"]
        assert "mobilenet_v2_finetuned" in metrics["runs"]
    elif name == "mobilenetv2_frozen":
        assert metrics["reload_matches"] is True
        assert "mobilenet_v2_frozen_32px" in metrics["runs"] and "resize_gain_points" in metrics
        assert metrics["budget"] == {"seconds": 1800, "runs": 2, "reserve_s": 20}
        assert metrics["wall_time_s"] < 1800
        shares = [json.loads((out / name / "run.json").read_text())["config"]["budget"]["seconds"]
                  for name in ("mobilenet_v2_frozen", "mobilenet_v2_frozen_32px")]
        assert shares[0] <= (1800 - 20) / 2 < shares[1]  # what the first left, the second got
    elif name == "two_stage":
        assert set(metrics["stages"]) == {"stage1", "stage2", "stage2_finetuned", "stage2_scratch"}
        assert metrics["runs"]["stage1"]["classes"] == list(metrics["classes"]["stage1"])
        assert metrics["runs"]["stage1"]["accuracy"] > 1 / 7  # 7 classes: chance 0.14
    elif name == "liltinynet":
        assert set(metrics["evaluator"]) == {"base", "finetuned"}
        rows = metrics["evaluator"]
        assert rows["finetuned"]["params"]["trainable"] > rows["base"]["params"]["trainable"]
        assert (out / "architecture_base.png").exists() and (out / "predictions_finetuned.png").exists()
    elif name == "backbones":
        assert (out / "slides.html").read_text().count('class="slide"') == 10
        assert list(metrics["skipped"]) == ["resnet50"] and "Cause" not in metrics["skipped"]["resnet50"]
        assert "mobilenet_v2" in metrics["purposes"]


def test_missing_weights_stop_with_the_weights_error(tmp_path, capsys):
    code = _run("transfer_vs_baseline", tmp_path, "--weights", str(tmp_path / "absent.h5"))
    assert code == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if "error" in line]
    assert len(errors) == 1 and "absent.h5" in errors[0] and "Traceback" not in err
    assert "Loaded" not in err  # checked before any data was read


def test_backbones_finds_every_weights_file_before_training_any(tmp_path, monkeypatch, capsys):
    from transferkit.errors import WeightsNotFoundError
    from transferkit.experiments import backbones

    real, trained = backbones.build_transfer_model, []

    def offline_v1(name, *args, **kwargs):
        if name == "mobilenet_v1_025":  # the second network's file is missing, offline
            raise WeightsNotFoundError("Put the file mobilenet_1_0_224_tf_no_top.h5 into models/.")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(backbones, "build_transfer_model", offline_v1)
    monkeypatch.setattr(backbones, "train", lambda *a, **k: trained.append(a))
    assert main(["run", "backbones", "--quick", "--data", str(CIFAR_ARCHIVE), "--out",
                 str(tmp_path), "--backbones", "mobilenet_v2,mobilenet_v1_025",
                 "--image-size", "32", "--per-class", "2"]) == 2
    err = capsys.readouterr().err
    assert not trained and "Nothing was trained" in err
    assert "--weights mobilenet_v1_025=FILE" in err and "--missing-weights skip" in err


def test_every_experiment_module_has_the_documented_interface():
    for name in EXPERIMENTS:
        module = load(name)
        assert name == module.NAME and module.__doc__.startswith("Experiment")
        assert callable(module.add_arguments) and callable(module.run)
        assert (ROOT / "examples" / f"{name}.py").exists()


@pytest.mark.slow
def test_backbones_with_fewer_layers_than_unfreeze_still_fine_tune(tmp_path):
    """VGG16 has 18 layers, fewer than the default --unfreeze 20 (random weights: path only)."""
    args = ["--backbones", "vgg16", "--weights", "none", "--image-size", "32", "--epochs", "1",
            "--fine-tune-epochs", "1", "--per-class", "10"]
    assert main(["run", "backbones", "--quick", "--data", str(CIFAR_ARCHIVE), "--out",
                 str(tmp_path), *args]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert {"vgg16_frozen", "vgg16_finetuned"} <= set(metrics["runs"])
