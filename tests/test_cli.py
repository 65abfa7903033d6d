import json

import pytest
from conftest import CIFAR_ARCHIVE, requires_cifar, requires_imagenet

from transferkit.cli import main


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


def test_input_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["quickstart", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist" in err[0] and "Traceback" not in err[0]


def test_quickstart_falls_back_offline_and_strict_refuses(tmp_path, capsys, monkeypatch):
    import keras

    def offline():
        raise Exception("URL fetch failure: no network")

    monkeypatch.setattr(keras.datasets.cifar10, "load_data", offline)
    assert main(["quickstart", "--strict", "--out", str(tmp_path / "s")]) == 2
    code = main(["quickstart", "--weights", "none", "--per-class", "20", "--epochs", "1",
                 "--out", str(tmp_path / "q")])
    assert code == 0
    captured = capsys.readouterr()
    assert "FALLBACK to generated images" in captured.err
    metrics = json.loads((tmp_path / "q" / "metrics.json").read_text())
    assert metrics["notes"] == ["data: generated images (fallback)"]


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
